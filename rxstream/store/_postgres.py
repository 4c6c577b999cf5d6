"""Conversation turns in PostgreSQL: ``PostgresStore``, a ``ContextStore`` that many processes on many machines
share. Its tables and statements are in ``_postgres_tables``; here, the pool, the transactions and the errors."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import replace
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..core._context_store import ToolResult, Turn, check_session_id
from ..core._errors import StoreClosedError, StoreUnavailableError
from ..core._redaction import Secrets, one_line
from ..core._values import Response
from ._postgres_tables import Tables
from ._turns import decode, encode, tool_turn

_T = TypeVar("_T")
Connection = psycopg.AsyncConnection[Any]

REMEDY = "check that the server is up and the URL, user and database are right"


class PostgresStore:
    """A ``ContextStore`` in PostgreSQL, on psycopg 3 (async) and a psycopg_pool connection pool.

    Each save is one statement, so one transaction: it adds one to the session's row (made
    with its first turn) and inserts the turn under that number. The row stays locked until
    the transaction ends, so concurrent saves to one session, from any number of processes
    and machines, take numbers one after another: unique, and gap-free (a save that fails
    rolls its number back with it). Saves to different sessions do not wait for each other.

    The tables are made on first use (``CREATE SCHEMA IF NOT EXISTS`` too), under an
    advisory lock so that many workers starting at once make them once. Tables of the same
    names that are not this store's, or of another schema version, are ``CorruptStoreError``
    and left as they are.

    Args:
        conninfo: A ``postgresql://`` (or ``postgres://``) URL or a libpq ``key=value`` string;
            or an ``AsyncConnectionPool`` of your own, which the store uses and never opens or
            closes (open it before the first save).
        schema: The schema the tables live in.
        table: The turns table's name; the session and version tables add ``_sessions`` and
            ``_schema`` to it.
        read_only: Read in read-only transactions and never create anything: absent tables read
            as an empty store, and ``save``/``delete`` raise ``StoreUnavailableError``.
        max_connections: The most connections the store's own pool opens.
        timeout: Seconds to wait for a connection before ``StoreUnavailableError``, and at ``close`` for
            the pool's workers to finish (those still busy are cancelled).
    """

    def __init__(
        self,
        conninfo: str | AsyncConnectionPool[Any],
        *,
        schema: str = "public",
        table: str = "rxstream_turns",
        read_only: bool = False,
        max_connections: int = 10,
        timeout: float = 10.0,
    ) -> None:
        self.tables = Tables(schema, table)
        self.schema = schema
        self.table = table
        self.read_only = read_only
        self.timeout = timeout
        self._owns_pool = isinstance(conninfo, str)
        if isinstance(conninfo, str):
            self.location, self._secrets = describe(conninfo)
            self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                conninfo, min_size=1, max_size=max_connections, open=False, timeout=timeout,
                kwargs={"autocommit": True},
                # A connection the server ended while it sat in the pool (a restart,
                # pg_terminate_backend) is replaced before use, instead of failing a save.
                check=AsyncConnectionPool.check_connection,
            )  # fmt: skip
        else:  # its conninfo may be a function giving one, for rotating credentials
            given = conninfo.conninfo
            self.location, self._secrets = describe(given) if isinstance(given, str) else (conninfo.name, Secrets())
            self._pool = conninfo
        self._opened = not self._owns_pool
        self._ready = False  # the tables are there and ours (checked once, on first use)
        self._preparing = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        options = ", read_only=True" if self.read_only else ""
        return f"PostgresStore({self.location!r}, schema={self.schema!r}, table={self.table!r}{options})"

    async def __aenter__(self) -> PostgresStore:
        await self._run(lambda connection: asyncio.sleep(0), absent=None)  # connect now, so a bad URL fails here
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pool the store made (not one it was given), once the operations already started have finished;
        its workers still busy after ``timeout`` seconds (connecting to a server that does not answer) are cancelled."""
        if self._closed:
            return
        self._closed = True
        if self._owns_pool and self._opened:
            tasks = pool_tasks(self._pool)  # before close takes them out of the pool
            await self._pool.close(timeout=self.timeout)
            await stop(tasks)

    async def save(self, session_id: str, response: Response, *, request: Mapping[str, Any] | None = None) -> Turn:
        """Append ``response`` (and the ``request`` body that asked for it, where known) as the
        session's next turn; it is committed when this returns."""
        return await self._save(Turn(session_id, 0, response, 0.0, None if request is None else dict(request)))

    async def save_tool_results(self, session_id: str, results: Sequence[ToolResult]) -> Turn:
        """Append the ``results`` of the tools the last response called as the session's next turn
        (``Turn.tool_results``); it is committed when this returns."""
        return await self._save(tool_turn(session_id, results))

    async def _save(self, turn: Turn) -> Turn:
        """Save ``turn`` as its session's next, numbered and timed here."""
        check_session_id(turn.session_id)
        self._check_writable()
        saved_at = time.time()
        fields = tuple(
            value.encode() if isinstance(value, str) else value
            for value in encode(turn.response, turn.request, turn.tool_results)
        )
        key = session_key(turn.session_id)

        async def save(connection: Connection) -> Turn:
            cursor = await connection.execute(self.tables.save, (key, turn.session_id.encode(), key, saved_at, *fields))
            (number,) = await fetch_one(cursor)
            return replace(turn, number=number, saved_at=saved_at)

        return await self._run(save, single_statement=True)

    async def history(self, session_id: str, limit: int | None = None) -> list[Turn]:
        """The session's turns, oldest first; with ``limit``, the most recent ``limit`` of them."""
        check_session_id(session_id)
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")

        async def history(connection: Connection) -> list[Turn]:
            cursor = await connection.execute(self.tables.history, (session_key(session_id), limit), binary=True)
            rows = await cursor.fetchall()
            return [
                decode(session_id, number, saved_at, fields, store=self.location)
                for number, saved_at, *fields in reversed(rows)
            ]

        return await self._run(history, absent=[], single_statement=True)

    async def sessions(self) -> list[str]:
        """Every session id, in the order of its first surviving turn."""

        async def sessions(connection: Connection) -> list[str]:
            cursor = await connection.execute(self.tables.sessions, binary=True)
            return [bytes(session_id).decode() for (session_id,) in await cursor.fetchall()]

        return await self._run(sessions, absent=[], single_statement=True)

    async def delete(self, session_id: str) -> int:
        """Forget a session; how many turns it had."""
        check_session_id(session_id)
        self._check_writable()
        key = session_key(session_id)

        async def delete(connection: Connection) -> int:
            # The session's row first: its lock makes a save in progress finish before the turns go.
            await connection.execute(self.tables.delete_session, (key,))
            cursor = await connection.execute(self.tables.delete_turns, (key,))
            return cursor.rowcount

        return await self._run(delete)

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreUnavailableError(
                self.location, "it was opened read-only", remedy="open it with PostgresStore(url) to write"
            )

    async def _run(
        self,
        operation: Callable[[Connection], Awaitable[_T]],
        *,
        absent: _T | None = None,
        single_statement: bool = False,
    ) -> _T:
        """Run ``operation`` on a pooled connection in one transaction, the driver's errors made ``StoreError``s;
        ``absent`` is the answer of a read-only store whose tables do not exist."""
        if self._closed:
            raise StoreClosedError(self.location)
        try:
            await self._open()
            async with self._pool.connection() as connection:
                if not self._ready:
                    async with self._preparing:
                        if not self._ready:  # another task may have checked while this one waited
                            async with connection.transaction():
                                self._ready = await self.tables.prepare(
                                    connection, read_only=self.read_only, location=self.location
                                )
                if not self._ready:  # read-only, and nothing saved yet
                    return absent  # type: ignore[return-value]  # reads pass their empty answer
                async with self._transaction(connection, single_statement):
                    return await operation(connection)
        except PoolTimeout as error:
            self._raise(await self._unreachable(), error)
        except psycopg.errors.UndefinedTable as error:  # dropped since we checked: make them again next time
            self._ready = False
            self._raise(self._detail(error), error)
        except psycopg.Error as error:
            self._raise(self._detail(error), error)

    async def _open(self) -> None:
        if not self._opened:
            async with self._preparing:
                if not self._opened:
                    await self._pool.open()
                    self._opened = True

    def _transaction(self, connection: Connection, single_statement: bool) -> AbstractAsyncContextManager[Any]:
        # One statement on an autocommit connection is its own transaction: no BEGIN and COMMIT round trips.
        if single_statement and connection.autocommit and not self.read_only:
            return nullcontext()
        return ReadOnly(connection) if self.read_only else connection.transaction()

    async def _unreachable(self) -> str:
        """Why no connection came: one direct attempt, to report the server's or the network's own reason."""
        conninfo, kwargs = self._pool.conninfo, self._pool.kwargs
        if not isinstance(conninfo, str) or not isinstance(kwargs, dict | None):
            return f"no connection within {self.timeout:g} s"
        try:
            connection = await psycopg.AsyncConnection.connect(
                conninfo, **{**(kwargs or {}), "connect_timeout": max(1, round(self.timeout))}
            )
        except psycopg.Error as error:
            return self._detail(error)
        await connection.close()
        return f"no connection free within {self.timeout:g} s (all {self._pool.max_size} in use); raise max_connections or timeout"

    def _detail(self, error: psycopg.Error) -> str:
        return self._secrets.redact(one_line(str(error).strip())) or type(error).__name__

    def _raise(self, detail: str, error: psycopg.Error) -> NoReturn:
        unavailable = StoreUnavailableError(self.location, detail, remedy=REMEDY)
        # The driver's error is the cause unless its text (a conninfo echoed back) would show the password.
        raise unavailable from (None if self._secrets.revealed_by(error) else error)


class ReadOnly:
    """A read-only transaction: what ``rxstream history`` reads in."""

    def __init__(self, connection: Connection) -> None:
        self.transaction = connection.transaction()
        self.connection = connection

    async def __aenter__(self) -> None:
        await self.transaction.__aenter__()
        await self.connection.execute("SET TRANSACTION READ ONLY")

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.transaction.__aexit__(kind, error, traceback)


def pool_tasks(pool: AsyncConnectionPool[Any]) -> list[asyncio.Task[Any]]:
    """The running tasks of ``pool``: its workers and its scheduler, by the names psycopg_pool gives them."""
    names = re.compile(rf"{re.escape(pool.name)}-(worker-\d+|scheduler)")
    return [task for task in asyncio.all_tasks() if names.fullmatch(task.get_name())]


async def stop(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the pool tasks left running (a worker still connecting: psycopg waits up to 130 s), once a
    tenth of a second for up to 5 s: a worker catches the CancelledError of the job it is running and goes
    on with its queue, so one cancellation is not enough, and a worker left running keeps the loop's
    shutdown waiting."""
    for _ in range(50):
        left = [task for task in tasks if not task.done()]
        if not left:
            return
        for task in left:
            task.cancel()
        await asyncio.wait(left, timeout=0.1)


async def fetch_one(cursor: psycopg.AsyncCursor[Any]) -> tuple[Any, ...]:
    row = await cursor.fetchone()
    assert row is not None  # INSERT ... RETURNING of one row
    return tuple(row)


def session_key(session_id: str) -> bytes:
    """The session's index key: a digest of its id, which may be longer than a B-tree entry can be."""
    return hashlib.sha256(session_id.encode()).digest()


def describe(conninfo: str) -> tuple[str, Secrets]:
    """Where ``conninfo`` points, fit for an error or a repr (``postgresql://user@host:port/dbname``, never the
    password), and the secrets to keep out of what the store reports."""
    secrets = Secrets()
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:  # its message quotes the string, password and all
        raise StoreUnavailableError(
            "PostgreSQL", "not a postgresql:// URL nor a key=value connection string", remedy="check the URL"
        ) from None
    password = parts.get("password")
    if password:
        secrets.add(str(password))
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}", secrets
