"""The ``rxstream`` command: one module per subcommand, each with ``add_parser`` and ``run``.

Errors are one line on stderr and a non-zero exit, unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence

from ..core._errors import IncompleteStreamError, StoreError, StreamError
from ..core._redaction import one_line

COMMANDS: tuple[str, ...] = (
    "demo",
    "connect",
    "serve",
    "history",
    "bench",
)  # module names under rxstream.cli, in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rxstream", description="Streamed LLM responses as a ReactiveX pipeline.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}._{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    command = importlib.import_module(f"{__name__}._{args.command}")
    try:
        return int(asyncio.run(command.run(args)) or 0)
    except KeyboardInterrupt:
        return 130
    except (StreamError, OSError, ValueError) as error:
        if args.debug:
            raise
        print(f"rxstream {args.command}: error: {one_line(error_line(error))}", file=sys.stderr)
        return 1


def error_line(error: BaseException) -> str:
    """The error for one line, cause first: a stream's error's class (what a program would catch) and
    message; for a stream ended by an error that is not rxstream's, that error, then what was kept.
    A store's error, and any other, is its message."""
    cause = error.__cause__
    if isinstance(error, IncompleteStreamError) and cause is not None:
        return f"{type(cause).__name__}: {cause} ({error})"
    streamed = isinstance(error, StreamError) and not isinstance(error, StoreError)
    return f"{type(error).__name__}: {error}" if streamed else str(error)
