"""``rxstream history SESSION_ID``: the saved turns of a conversation."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..core._context_store import Turn
from ..core._values import Part
from ..store._sqlite import SQLiteStore
from . import _options

DEFAULT_DB = "rxstream.db"  # in the working directory; the demo saves its turn there too


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("history", help="print the saved turns of a session")
    parser.add_argument("session_id")
    parser.add_argument("--db", default=DEFAULT_DB, help="the session database (default %(default)s)")
    parser.add_argument("--limit", type=_options.positive, help="only the most recent LIMIT turns")


async def run(args: argparse.Namespace) -> int:
    async with SQLiteStore(args.db, read_only=True) as store:  # reading never writes, nor creates the file
        turns = await store.history(args.session_id, args.limit)
    if not turns:
        print(f"rxstream history: no turns saved for session {args.session_id!r} in {args.db}", file=sys.stderr)
        return 1
    for turn in turns:
        print(describe(turn))
    return 0


def describe(turn: Turn) -> str:
    """A header line, then the parts in order (text as it is, reasoning and images marked), the refusal and the tool calls."""
    response = turn.response
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(turn.saved_at))
    state = "complete" if response.complete else "INCOMPLETE"
    if response.finish_reason is not None:
        state += f" ({response.finish_reason})"
    lines = [f"--- turn {turn.number} · {when} · {state} · {response.chunks} chunks"]
    for part in response.parts or (Part("text", response.text),):
        lines.append(part.value if part.kind == "text" else f"[{part.kind}] {part.value}")
    if response.refusal is not None:
        lines.append(f"[refusal] {response.refusal}")
    for call in response.tool_calls:
        lines.append(f"[tool call {call.index}] {call.name} {call.id} {call.arguments}")
    return "\n".join(lines)
