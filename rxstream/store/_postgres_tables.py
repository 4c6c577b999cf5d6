"""PostgresStore's tables: their columns, the statements on them, and making or checking them on first use.

Three tables, named after ``table`` in ``schema``: the turns; one row a session (its id, its
count of turns, its place in ``sessions()``), whose lock numbers the turns; and the schema
version. A later version that changes a column bumps ``SCHEMA_VERSION`` and migrates the
tables of the version before where ``prepare`` reads the version row.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..core._errors import CorruptStoreError
from ..core._values import Response
from ._turns import FIELDS, encode

Connection = psycopg.AsyncConnection[Any]

SCHEMA_VERSION = 3
# Strings are UTF-8 bytes (bytea): PostgreSQL's text cannot hold NUL, which a model may send.
TURN_COLUMNS = {
    "session_key": "bytea",
    "number": "integer",
    "saved_at": "double precision",
    "complete": "boolean",
    "text": "bytea",
    "reasoning": "bytea",
    "finish_reason": "bytea",
    "chunks": "bigint",
    "parts": "bytea",
    "stats": "bytea",
    "refusal": "bytea",
    "tool_calls": "bytea",
    "reasoning_signatures": "bytea",
    "thinking": "bytea",
    "request": "bytea",
    "tool_results": "bytea",
}
# The turn columns each earlier version lacks: version 1 had no thinking blocks and no request, version 2 no tool
# turns. Its tables gain them (NULL: the blocks read from the joined reasoning, the request unknown, the model's
# turn) when a writer first opens them, and a reader reads them with those defaults.
ADDED_SINCE = {1: ("thinking", "request", "tool_results"), 2: ("tool_results",)}
SESSION_COLUMNS = {"session_key": "bytea", "session_id": "bytea", "turns": "integer", "position": "bigint"}
VERSION_COLUMNS = {"version": "integer"}
NULLABLE = ("finish_reason", "refusal", "thinking", "request", "tool_results")
# Names of at most 63 bytes (NAMEDATALEN - 1), the longest suffix included: PostgreSQL would cut a longer one.
LONGEST_TABLE = 63 - len("_sessions")


def columns_of(version: int) -> dict[str, str]:
    """The turn columns of an earlier schema ``version``."""
    return {name: kind for name, kind in TURN_COLUMNS.items() if name not in ADDED_SINCE[version]}


class Tables:
    """The three tables of one store and the statements the store runs on them."""

    def __init__(self, schema: str, table: str) -> None:
        if not schema or not table or len(schema.encode()) > 63 or len(table.encode()) > LONGEST_TABLE:
            raise ValueError(f"schema and table must be non-empty, of at most 63 and {LONGEST_TABLE} bytes")
        self.schema = schema
        self.table = table
        self.turns, self.sessions_table, self.version = (
            sql.Identifier(schema, table + suffix) for suffix in ("", "_sessions", "_schema")
        )
        fields = sql.SQL(", ").join(map(sql.Identifier, FIELDS))
        # Numbers and booleans as psycopg picks; strings and JSON as binary bytea, not hex text twice their size.
        values = sql.SQL(", ").join(
            sql.SQL("%s" if isinstance(value, bool | int) else "%b") for value in encode(Response("", True, 0))
        )
        # One statement: the session's row counts the turn (and stays locked to the end), the turn goes in under it.
        self.save = sql.SQL(
            "WITH counter AS ("
            " INSERT INTO {sessions} AS s (session_key, session_id, turns) VALUES (%b, %b, 1)"
            " ON CONFLICT (session_key) DO UPDATE SET turns = s.turns + 1 RETURNING turns)"
            " INSERT INTO {turns} (session_key, number, saved_at, {fields}) SELECT %b, turns, %s, {values} FROM counter"
            " RETURNING number"
        ).format(sessions=self.sessions_table, turns=self.turns, fields=fields, values=values)
        self.history = self._history(fields)
        self.sessions = sql.SQL("SELECT session_id FROM {} ORDER BY position").format(self.sessions_table)
        self.delete_session = sql.SQL("DELETE FROM {} WHERE session_key = %b").format(self.sessions_table)
        self.delete_turns = sql.SQL("DELETE FROM {} WHERE session_key = %b").format(self.turns)

    def _history(self, fields: sql.Composable) -> sql.Composed:
        return sql.SQL(
            "SELECT number, saved_at, {fields} FROM {turns} WHERE session_key = %b ORDER BY number DESC LIMIT %s"
        ).format(fields=fields, turns=self.turns)

    async def prepare(self, connection: Connection, *, read_only: bool, location: str) -> bool:
        """Check the tables, making them if there are none and ``read_only`` is false (in the caller's transaction);
        whether they are there. ``CorruptStoreError`` naming ``location`` if they are not ours."""
        if read_only:
            await connection.execute("SET TRANSACTION READ ONLY")
        else:  # one worker makes the tables while the others wait, then find them
            name = f"rxstream {self.schema}.{self.table}"
            await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))
        cursor = await connection.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name IN (%s, %s, %s) ORDER BY table_name, ordinal_position",
            (self.schema, self.table, f"{self.table}_sessions", f"{self.table}_schema"),
        )
        found: dict[str, dict[str, str]] = {}
        for table, column, kind in await cursor.fetchall():
            found.setdefault(table, {})[column] = kind
        expected = {
            self.table: TURN_COLUMNS,
            f"{self.table}_sessions": SESSION_COLUMNS,
            f"{self.table}_schema": VERSION_COLUMNS,
        }
        if not found:
            if not read_only:
                await self._create(connection)
            return not read_only
        earlier = {version: {**expected, self.table: columns_of(version)} for version in ADDED_SINCE}
        if found != expected and found not in earlier.values():
            shown = "; ".join(f"{table} ({', '.join(columns)})" for table, columns in sorted(found.items()))
            raise CorruptStoreError(location, f"schema {self.schema!r} already has tables of other columns: {shown}")
        cursor = await connection.execute(sql.SQL("SELECT version FROM {}").format(self.version))
        versions = [version for (version,) in await cursor.fetchall()]
        if len(versions) == 1 and earlier.get(versions[0]) == found:
            await self._from_version(versions[0], connection, read_only=read_only)
        elif versions != [SCHEMA_VERSION] or found != expected:
            raise CorruptStoreError(
                location,
                f"{self.schema}.{self.table}_schema holds the versions {versions}, this rxstream knows {SCHEMA_VERSION}",
            )
        return True

    async def _from_version(self, version: int, connection: Connection, *, read_only: bool) -> None:
        """Migrate an earlier ``version``'s tables in the caller's transaction (which holds the advisory
        lock), or, read-only, read them with the new columns' defaults."""
        added = ADDED_SINCE[version]
        if read_only:
            self.history = self._history(
                sql.SQL(", ").join(sql.SQL("NULL::bytea") if name in added else sql.Identifier(name) for name in FIELDS)
            )
            return
        for name in added:
            await connection.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} bytea").format(self.turns, sql.Identifier(name))
            )
        await connection.execute(sql.SQL("UPDATE {} SET version = %s").format(self.version), (SCHEMA_VERSION,))

    async def _create(self, connection: Connection) -> None:
        def columns(names: dict[str, str]) -> sql.Composable:
            return sql.SQL(", ").join(
                sql.SQL("{} {}{}").format(
                    sql.Identifier(name), sql.SQL(kind), sql.SQL("" if name in NULLABLE else " NOT NULL")
                )
                for name, kind in names.items()
                if name != "position"  # an identity column, declared apart
            )

        await connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        await connection.execute(
            sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY (session_key, number))").format(self.turns, columns(TURN_COLUMNS))
        )
        await connection.execute(
            # position orders sessions() by first turn; session_key is a digest, since a B-tree key holds ~2.7 kB and an id may be longer.
            sql.SQL(
                "CREATE TABLE {} ({}, position bigint GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (session_key))"
            ).format(self.sessions_table, columns(SESSION_COLUMNS))
        )
        await connection.execute(sql.SQL("CREATE TABLE {} ({})").format(self.version, columns(VERSION_COLUMNS)))
        await connection.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(self.version), (SCHEMA_VERSION,))
