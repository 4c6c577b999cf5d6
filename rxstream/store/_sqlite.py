"""Where finished (or cut-short) responses are kept: turns of a conversation under a session id.

``ContextStore`` is the protocol; ``SQLiteStore`` the default, on the standard library's
``sqlite3``, in WAL mode, one transaction per save, run on one worker thread of its own so
that the event loop never waits for the disk; or read-only, for a reader such as ``rxstream history``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ..core._context_store import ToolResult, Turn, check_session_id
from ..core._errors import CorruptStoreError, StoreClosedError, StoreUnavailableError
from ..core._values import Response
from ._turns import FIELDS, decode, encode, tool_turn

_T = TypeVar("_T")

COLUMNS = ("session_id", "number", "saved_at", *FIELDS)
INSERT = f"INSERT INTO turns ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
TURNS_TABLE = """turns (
    session_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    saved_at REAL NOT NULL,
    complete INTEGER NOT NULL,
    text TEXT NOT NULL,
    reasoning TEXT NOT NULL,
    finish_reason TEXT,
    chunks INTEGER NOT NULL,
    parts BLOB NOT NULL,
    stats BLOB NOT NULL,
    refusal TEXT,
    tool_calls BLOB NOT NULL DEFAULT '[]',
    reasoning_signatures BLOB NOT NULL DEFAULT '[]',
    thinking BLOB,
    request BLOB,
    tool_results BLOB,
    PRIMARY KEY (session_id, number)
)"""
SCHEMA = f"CREATE TABLE IF NOT EXISTS {TURNS_TABLE}"
# The columns later versions added, as declared and as an earlier table reads without them.
ADDED = {
    "refusal": ("TEXT", "NULL"),
    "tool_calls": ("BLOB NOT NULL DEFAULT '[]'", "'[]'"),
    "reasoning_signatures": ("BLOB NOT NULL DEFAULT '[]'", "'[]'"),
    "thinking": ("BLOB", "NULL"),  # NULL: saved before blocks were kept (_turns.legacy_thinking)
    "request": ("BLOB", "NULL"),
    "tool_results": ("BLOB", "NULL"),  # NULL: the model's turn
}
# The columns of each version's table: before tool calls, before thinking blocks and requests,
# before tool turns, now. An earlier one is read as it is (the missing columns as their defaults),
# so that reading never writes; its first save adds them.
VERSIONS = (COLUMNS[:10], COLUMNS[:13], COLUMNS[:15], COLUMNS)
CORRUPT = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)  # the primary result codes that mean a damaged file
# Another process holds the lock. SQLite's busy handler waits inside a statement; what still comes
# back busy (a lock held past the wait, a journal-mode switch racing another opener) is tried again.
BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
FIRST_PAUSE, LONGEST_PAUSE = 0.005, 0.25


def table_columns(connection: sqlite3.Connection) -> tuple[str, ...]:
    return tuple(row[1] for row in connection.execute("PRAGMA table_info(turns)"))


def select(columns: tuple[str, ...]) -> tuple[str, ...]:
    """What to select from a table of ``columns`` (one of ``VERSIONS``): each of ``COLUMNS``, or its default."""
    return COLUMNS[: len(columns)] + tuple(ADDED[name][1] for name in COLUMNS[len(columns) :])


class SQLiteStore:
    """A ``ContextStore`` in one SQLite file (or ``":memory:"``).

    One connection, owned by one worker thread: sqlite3 connections must not be shared
    across threads, and SQLite takes one writer at a time anyway, so a single thread
    serialises saves without lock contention while the event loop goes on. Other
    processes may use the same file: each save numbers its turn inside its own
    ``BEGIN IMMEDIATE`` transaction, which holds the write lock.

    Processes sharing the file wait for each other's lock: each statement up to ``busy_timeout``
    seconds (SQLite's busy handler), and an operation that still finds the database locked is
    rolled back and tried again, whole, until ``busy_timeout`` has passed since it began; only
    then is it ``StoreUnavailableError`` ("database is locked"). One writer at a time: saves
    from many processes queue, so their rate is one file's (a few hundred a second with
    ``synchronous=FULL``), and a process that holds a write transaction longer than
    ``busy_timeout`` still fails the others.

    With ``read_only=True`` the file is opened with SQLite's ``mode=ro``, so nothing is ever
    written to it, and it must exist: an empty (even 0-byte) database reads as an empty
    store, and ``save`` and ``delete`` raise ``StoreUnavailableError``.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rxstream-store")
        self._connection: sqlite3.Connection | None = None
        self._current = False  # the table has every column (it may be an earlier version's until a save)
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, read_only=True)" if self.read_only else f"SQLiteStore({self.path!r})"

    async def __aenter__(self) -> SQLiteStore:
        await self._run(lambda connection: connection)  # open now, so a bad path fails here
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the database once the operations already started have finished."""
        if self._closed:
            return
        self._closed = True

        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, close)
        finally:
            self._executor.shutdown(wait=False)

    async def save(self, session_id: str, response: Response, *, request: Mapping[str, Any] | None = None) -> Turn:
        """Append ``response`` (and the ``request`` body that asked for it, where known) as the
        session's next turn; it is on disk when this returns."""
        return await self._save(Turn(session_id, 0, response, 0.0, None if request is None else dict(request)))

    async def save_tool_results(self, session_id: str, results: Sequence[ToolResult]) -> Turn:
        """Append the ``results`` of the tools the last response called as the session's next turn
        (``Turn.tool_results``); it is on disk when this returns."""
        return await self._save(tool_turn(session_id, results))

    async def _save(self, turn: Turn) -> Turn:
        """Save ``turn`` as its session's next, numbered and timed here."""
        check_session_id(turn.session_id)
        self._check_writable()
        saved_at = time.time()
        fields = encode(turn.response, turn.request, turn.tool_results)

        def save(connection: sqlite3.Connection) -> Turn:
            with connection:  # one transaction: the number and the row, or nothing
                connection.execute("BEGIN IMMEDIATE")
                self._migrate(connection)
                (number,) = connection.execute(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM turns WHERE session_id = ?", (turn.session_id,)
                ).fetchone()
                connection.execute(INSERT, (turn.session_id, number, saved_at, *fields))
            self._current = True  # committed, columns and all (a failed migration rolls back with the save)
            return replace(turn, number=number, saved_at=saved_at)

        return await self._run(save)

    async def history(self, session_id: str, limit: int | None = None) -> list[Turn]:
        """The session's turns, oldest first; with ``limit``, the most recent ``limit`` of them."""
        check_session_id(session_id)
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")

        def history(connection: sqlite3.Connection) -> list[Turn]:
            selected = ", ".join(COLUMNS if self._current else select(table_columns(connection)))
            rows = connection.execute(
                f"SELECT {selected} FROM turns WHERE session_id = ? ORDER BY number DESC LIMIT ?",
                (session_id, -1 if limit is None else limit),
            ).fetchall()
            return [self._turn(row) for row in reversed(rows)]

        return await self._run(history)

    async def sessions(self) -> list[str]:
        """Every session id, in the order of its first surviving turn."""

        def sessions(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute("SELECT session_id FROM turns GROUP BY session_id ORDER BY MIN(rowid)")
            return [session_id for (session_id,) in rows]

        return await self._run(sessions)

    async def delete(self, session_id: str) -> int:
        """Forget a session; how many turns it had."""
        check_session_id(session_id)
        self._check_writable()

        def delete(connection: sqlite3.Connection) -> int:
            with connection:
                return connection.execute("DELETE FROM turns WHERE session_id = ?", (session_id,)).rowcount

        return await self._run(delete)

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreUnavailableError(self.path, "it was opened read-only; open it with SQLiteStore(path) to write")

    async def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise StoreClosedError(self.path)

        def run() -> _T:
            deadline = time.monotonic() + self.busy_timeout
            pause = FIRST_PAUSE
            while True:
                try:
                    return operation(self._open())
                except sqlite3.DatabaseError as error:  # the module's own errors carry no sqlite_errorcode
                    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
                    if code in BUSY and time.monotonic() + pause < deadline:  # rolled back: try it again, whole
                        time.sleep(pause)
                        pause = min(2 * pause, LONGEST_PAUSE)
                        continue
                    if code in CORRUPT:
                        raise CorruptStoreError(self.path, str(error)) from error
                    raise StoreUnavailableError(self.path, str(error)) from error

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = self._open_read_only() if self.read_only else self._open_for_writing()
        return self._connection

    def _open_for_writing(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        try:
            # Read before writing anything: a damaged file or another program's database fails
            # here, untouched, rather than after switching its journal mode.
            columns = self._check_schema(connection)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # a save that returned survives a crash
            connection.execute(SCHEMA)
        except BaseException:
            connection.close()
            raise
        self._current = columns in ((), COLUMNS)
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Add the columns an earlier version's table lacks, inside the save's transaction
        (which holds the write lock, so another process cannot be doing the same)."""
        if not self._current:
            for name in COLUMNS[len(table_columns(connection)) :]:
                connection.execute(f"ALTER TABLE turns ADD COLUMN {name} {ADDED[name][0]}")

    def _open_read_only(self) -> sqlite3.Connection:
        path = Path(self.path)
        if not path.is_file():
            raise StoreUnavailableError(self.path, "no such file")
        try:
            return self._reader(f"{path.absolute().as_uri()}?mode=ro")
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", 0) != sqlite3.SQLITE_READONLY_DIRECTORY:
                raise
        # A WAL database needs a -shm file beside it, which a read-only directory cannot get.
        # Without one no process has the database open, and SQLite refuses (CANTOPEN, above)
        # when a crash left changes in the -wal: the file alone holds every turn.
        return self._reader(f"{path.absolute().as_uri()}?mode=ro&immutable=1")

    def _reader(self, uri: str) -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=self.busy_timeout)
        try:
            if not self._check_schema(connection):  # a new, empty database: no turns to read
                connection.execute(f"CREATE TEMP TABLE {TURNS_TABLE}")  # in memory, so queries need no special case
        except BaseException:
            connection.close()
            raise
        return connection

    def _check_schema(self, connection: sqlite3.Connection) -> tuple[str, ...]:
        """The columns of our ``turns`` table (none in a new, empty database); an error if the
        database is another program's."""
        names = [name for (name,) in connection.execute("SELECT name FROM sqlite_master")]
        if "turns" not in names:
            if names:
                raise CorruptStoreError(self.path, f"it holds {', '.join(sorted(names)[:5])} and no 'turns' table")
            return ()
        columns = table_columns(connection)
        if columns not in VERSIONS:
            raise CorruptStoreError(self.path, f"its 'turns' table has the columns {', '.join(columns)}")
        return columns

    def _turn(self, row: tuple[Any, ...]) -> Turn:
        session_id, number, saved_at, *fields = row
        return decode(session_id, number, saved_at, fields, store=self.path)
