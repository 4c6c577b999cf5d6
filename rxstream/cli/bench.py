"""``rxstream bench``: the benchmark suite in benchmarks/, its table, and --json FILE."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def add_parser(subparsers: Any) -> None:
    from benchmarks.suite import add_options

    add_options(subparsers.add_parser("bench", help="run the benchmark suite (ratios against baselines)"))


async def run(args: argparse.Namespace) -> int:
    from benchmarks.suite import report

    return await asyncio.to_thread(report, args)  # the suite runs its own event loops
