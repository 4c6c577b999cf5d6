"""``rxstream bench``: the benchmark suite in benchmarks/, its table, and --json FILE."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from typing import Any

# The repository's benchmarks/ folder, installed inside the package (see pyproject.toml),
# imported only when the command runs: ``rxstream --help`` does not load the suite.
SUITE = "rxstream._benchmarks.suite"


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks that every benchmark runs, measures nothing"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")


def add_parser(subparsers: Any) -> None:
    add_options(subparsers.add_parser("bench", help="run the benchmark suite (ratios against baselines)"))


async def run(args: argparse.Namespace) -> int:
    report = importlib.import_module(SUITE).report
    return int(await asyncio.to_thread(report, args))  # the suite runs its own event loops
