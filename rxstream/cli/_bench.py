"""``rxstream bench``: the benchmark suite in benchmarks/, its table, and --json FILE."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from typing import Any

# The repository's benchmarks/ folder, installed inside the package (see pyproject.toml),
# imported only when the command runs: ``rxstream --help`` does not load the suite.
SUITE = "rxstream._benchmarks.suite"
# The same modules from a checkout whose rxstream is imported from the working tree (python -m
# rxstream in the repository): the strict editable install maps the folder only in its link tree.
CHECKOUT_SUITE = "benchmarks.suite"


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks that every benchmark runs, measures nothing"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")


def add_parser(subparsers: Any) -> None:
    add_options(subparsers.add_parser("bench", help="run the benchmark suite (ratios against baselines)"))


async def run(args: argparse.Namespace) -> int:
    try:
        suite = importlib.import_module(SUITE)
    except ModuleNotFoundError as error:
        if error.name != "rxstream._benchmarks":
            raise
        suite = importlib.import_module(CHECKOUT_SUITE)
    report = suite.report
    return int(await asyncio.to_thread(report, args))  # the suite runs its own event loops
