"""``rxstream history SESSION_ID``: the saved turns of a conversation."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import TYPE_CHECKING, Any

from ..core._context_store import Turn
from ..core._errors import StoreUnavailableError
from ..core._values import Part
from ..store._sqlite import SQLiteStore
from . import _options

if TYPE_CHECKING:
    from ..store._postgres import PostgresStore

DEFAULT_DB = "rxstream.db"  # in the working directory; the demo saves its turn there too
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def add_store_options(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--db", default=DEFAULT_DB, help=f"{help}: a SQLite file or a postgresql:// URL (default %(default)s)"
    )
    parser.add_argument("--schema", default="public", help="the PostgreSQL schema of the tables (default %(default)s)")


def open_store(args: argparse.Namespace, *, read_only: bool) -> SQLiteStore | PostgresStore:
    """The store ``--db`` names: PostgreSQL for a postgresql:// URL (psycopg loaded only then), else a SQLite file."""
    if not args.db.startswith(POSTGRES_SCHEMES):
        return SQLiteStore(args.db, read_only=read_only)
    try:
        postgres = importlib.import_module("rxstream.store._postgres")
    except ImportError as error:
        raise StoreUnavailableError(
            "PostgreSQL", f"{error.name} is not installed", remedy="pip install 'rxstream[postgres]'"
        ) from None
    store: PostgresStore = postgres.PostgresStore(args.db, schema=args.schema, read_only=read_only)
    return store


def where(store: SQLiteStore | PostgresStore) -> str:
    """The store as a message may name it: the file, or the server without the password."""
    return store.path if isinstance(store, SQLiteStore) else store.location


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("history", help="print the saved turns of a session")
    parser.add_argument("session_id")
    add_store_options(parser, "the session database")
    parser.add_argument("--limit", type=_options.positive, help="only the most recent LIMIT turns")


async def run(args: argparse.Namespace) -> int:
    # Reading never writes: a SQLite file is not created, PostgreSQL is read in read-only transactions.
    async with open_store(args, read_only=True) as store:
        turns = await store.history(args.session_id, args.limit)
    if not turns:
        print(f"rxstream history: no turns saved for session {args.session_id!r} in {where(store)}", file=sys.stderr)
        return 1
    for previous, turn in zip([None, *turns], turns, strict=False):
        print(describe(turn, previous))
    return 0


def describe(turn: Turn, previous: Turn | None = None) -> str:
    """A header line, then what the turn's request added (less the results the ``previous`` turn,
    a tool turn, showed), the parts in order (text as it is, reasoning and images marked), the
    refusal and the tool calls; or a tool turn's results."""
    response = turn.response
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(turn.saved_at))
    if turn.role == "tool":
        results = [
            f"> [tool result {result.call_id}{' error' if result.is_error else ''}] {result.content}"
            for result in turn.tool_results
        ]
        return "\n".join([f"--- turn {turn.number} · {when} · tool results", *results])
    state = "complete" if response.complete else "INCOMPLETE"
    if response.finish_reason is not None:
        state += f" ({response.finish_reason})"
    lines = [f"--- turn {turn.number} · {when} · {state} · {response.chunks} chunks"]
    if turn.request is not None:
        shown = {result.call_id for result in previous.tool_results} if previous is not None else set()
        lines += sent(turn.request, shown)
    for part in response.parts or (Part("text", response.text),):
        lines.append(part.value if part.kind == "text" else f"[{part.kind}] {part.value}")
    if response.refusal is not None:
        lines.append(f"[refusal] {response.refusal}")
    for call in response.tool_calls:
        lines.append(f"[tool call {call.index}] {call.name} {call.id} {call.arguments}")
    return "\n".join(lines)


def sent(request: dict[str, Any], shown: set[str]) -> list[str]:
    """What the turn's request added after the last answer (the user's message, tool results), each
    marked ``>``; but not the results of the calls in ``shown``, which a tool turn showed."""
    items = request.get("messages", request.get("input"))
    if isinstance(items, str):
        return [f"> [user] {items}"]
    new: list[str] = []
    for item in reversed(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or item.get("role") == "assistant" or item.get("type") == "function_call":
            break
        answers = answered(item)
        if answers and answers <= shown:
            continue
        who = item.get("role") or item.get("type")
        content = item.get("content", item.get("output"))
        if isinstance(content, list):  # Anthropic's blocks: a text's text, a tool result's content
            content = " ".join(
                str(block.get("text", block.get("content", ""))) for block in content if isinstance(block, dict)
            )
        new.append(f"> [{who}] {content}")
    return new[::-1]


def answered(item: dict[str, Any]) -> set[str]:
    """The tool calls a message or input item answers: a ``tool`` message's, a ``function_call_output``'s,
    a user message's ``tool_result`` blocks' (all of its blocks must be results)."""
    if item.get("role") == "tool" or item.get("type") == "function_call_output":
        return {str(item.get("tool_call_id", item.get("call_id")))}
    content = item.get("content")
    if (
        isinstance(content, list)
        and content
        and all(isinstance(block, dict) and block.get("type") == "tool_result" for block in content)
    ):
        return {str(block.get("tool_use_id")) for block in content}
    return set()
