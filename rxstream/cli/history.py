"""``rxstream history SESSION_ID``: the saved turns of a conversation."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..store import SQLiteStore

DEFAULT_DB = "rxstream.db"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("history", help="print the saved turns of a session")
    parser.add_argument("session_id")
    parser.add_argument("--db", default=DEFAULT_DB, help="the session database (default %(default)s)")
    parser.add_argument("--limit", type=int, help="only the most recent LIMIT turns")


async def run(args: argparse.Namespace) -> int:
    async with SQLiteStore(args.db) as store:
        turns = await store.history(args.session_id, args.limit)
    if not turns:
        print(f"no turns saved for session {args.session_id!r} in {args.db}")
        return 1
    for turn in turns:
        response = turn.response
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(turn.saved_at))
        state = "complete" if response.complete else "INCOMPLETE"
        print(f"--- turn {turn.number} · {when} · {state} · {response.chunks} chunks")
        print(response.text)
    return 0
