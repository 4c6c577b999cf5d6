"""The ``rxstream`` command: one module per subcommand, each with ``add_parser`` and ``run`` (and
``check``, for what its options need of each other).

Exit status: 0 done, 1 the stream (or the store) failed, 2 a usage error (one line naming the
option, before anything connects), 130 Ctrl-C, 141 the reader of the output left (``| head``).
Errors are one line on stderr, unless ``--debug`` (before or after the command) asks for the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..core._errors import IncompleteStreamError, StreamError
from ..core._redaction import one_line
from ._options import Parser
from ._render import flags_for

COMMANDS: tuple[str, ...] = (
    "demo",
    "connect",
    "chat",
    "serve",
    "relay",
    "history",
    "bench",
)  # module names under rxstream.cli, in the order --help lists them
DEBUG = "show tracebacks instead of one-line errors"
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader left


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rxstream", description="Streamed LLM responses as a ReactiveX pipeline.")
    parser.add_argument("--version", action="version", version=f"rxstream {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}._{name}").add_parser(subparsers)
    for name, command in subparsers.choices.items():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG)
        command.set_defaults(check=getattr(importlib.import_module(f"{__name__}._{name}"), "check", None))
        command.set_defaults(usage_error=command.error)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.check is not None:
        args.check(args)
    command = importlib.import_module(f"{__name__}._{args.command}")
    try:
        return int(asyncio.run(command.run(args)) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor a second error as Python exits
        return BROKEN_PIPE
    except (StreamError, OSError, ValueError) as error:
        if args.debug:
            raise
        print(error_message(args.command, error), file=sys.stderr)
        return 1


def error_message(command: str, error: BaseException) -> str:
    """The one line a failure prints on stderr."""
    return f"rxstream {command}: error: {one_line(flags_for(error_line(error)))}"


def error_line(error: BaseException) -> str:
    """The error for one line, cause first: an rxstream error's class (what a program would catch) and
    message; for a stream ended by an error that is not rxstream's, that error, then what was kept."""
    cause = error.__cause__
    if isinstance(error, IncompleteStreamError) and cause is not None:
        return f"{type(cause).__name__}: {cause} ({error})"
    return f"{type(error).__name__}: {error}" if isinstance(error, StreamError) else str(error)
