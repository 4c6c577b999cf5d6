"""``rxstream chat URL --session S --model M``: a conversation in the terminal, continued across runs.

Each line typed is sent with the session's saved turns before it, the answer shown live and saved
with its request. Ctrl-C during an answer keeps the partial turn and returns to the prompt; Ctrl-C
at the prompt exits 130; end of input (Ctrl-D) or ``/quit`` exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from ..core._context_store import Turn
from ..protocol._requests import chat_messages, chat_request, responses_continuation, responses_request
from . import _options, error_message
from ._connect import deltas_of
from ._history import add_store_options, open_store, where
from ._live import Keeping, read_live
from ._render import LiveText

PROMPT = "> "
QUIT = "/quit"
_T = TypeVar("_T")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("chat", help="chat in the terminal, continuing a saved session")
    parser.add_argument("uri", help="an https://…/chat/completions URL, with --responses an https://…/v1/responses one")
    parser.add_argument("--session", required=True, help="the session to continue and save each turn under")
    parser.add_argument("--model", required=True, help="the model to ask")
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--sse", action="store_true", help="OpenAI-compatible chat completions (the default)")
    formats.add_argument("--responses", action="store_true", help="OpenAI Responses, over SSE")
    add_store_options(parser, "the session database")
    _options.add_token_env(parser)
    parser.add_argument(
        "--timeout", type=_options.timeout, default=30.0, help="idle timeout in seconds (default %(default)s)"
    )
    parser.set_defaults(content_timeout=600.0, background=False)


async def run(args: argparse.Namespace) -> int:
    interrupts = Interrupts()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupts.interrupt)
    try:
        async with open_store(args, read_only=False) as store:
            turns = await store.history(args.session)
            print(f"rxstream chat: session {args.session!r}, {len(turns)} turns in {where(store)}", file=sys.stderr)
            lines = stdin_lines(loop)
            while True:
                print(PROMPT, end="", flush=True)
                try:
                    line = await interrupts.awaiting(lines.get())
                except asyncio.CancelledError:
                    print(flush=True)
                    return 130
                if line is None or line.strip() == QUIT:
                    return 0
                if not line.strip():
                    continue
                body = next_request(args, turns, line)
                live = LiveText(sys.stdout)
                deltas = deltas_of(
                    argparse.Namespace(**{**vars(args), "sse": not args.responses, "request": body}), live
                )
                keeping = Keeping(store, args.session, where(store), body)
                with contextlib.suppress(asyncio.CancelledError):  # read_live kept the partial and said so
                    outcome = await interrupts.awaiting(read_live("chat", deltas, live, keeping))
                    live.end_line()
                    if outcome.error is not None:
                        print(error_message("chat", outcome.error), file=sys.stderr)
                turns = await store.history(args.session)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def next_request(args: argparse.Namespace, turns: Sequence[Turn], line: str) -> dict[str, Any]:
    """The body that asks ``line`` after the saved ``turns``."""
    message = {"role": "user", "content": line}
    if args.responses:
        fields = responses_continuation(turns, [message])
        return responses_request(args.model, fields.pop("input"), **fields)
    return chat_request(args.model, [*chat_messages(turns), message])


class Interrupts:
    """Ctrl-C cancels what the chat is waiting for (a line, an answer) instead of the whole command."""

    def __init__(self) -> None:
        self.waiting: asyncio.Future[Any] | None = None

    def interrupt(self) -> None:
        if self.waiting is not None:
            self.waiting.cancel()

    async def awaiting(self, awaitable: Awaitable[_T]) -> _T:
        waiting: asyncio.Future[_T] = asyncio.ensure_future(awaitable)
        self.waiting = waiting
        try:
            return await waiting
        finally:
            self.waiting = None


def stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """The lines typed, then None at end of input: read by a daemon thread, so that a pending read
    neither blocks the loop nor keeps the process from exiting."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(line: str | None) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, line)

    def read() -> None:
        pending = b""
        with contextlib.suppress(RuntimeError, OSError):  # the loop closed as the command ended
            while data := os.read(sys.stdin.fileno(), 65536):
                *complete, pending = (pending + data).split(b"\n")
                for line in complete:
                    deliver(line.decode(errors="replace"))
            if pending:
                deliver(pending.decode(errors="replace"))
            deliver(None)

    threading.Thread(target=read, name="rxstream chat input", daemon=True).start()
    return lines
