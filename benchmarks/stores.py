"""The session stores: saves a second and reading a long session, PostgresStore beside psycopg by hand and SQLiteStore.

The server is ``RXSTREAM_BENCH_POSTGRES`` (default: the local one the tests use); the rows are
left out, saying so, when it cannot be reached or psycopg is not installed. Everything is made
in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import rxstream
from rxstream.store._turns import FIELDS, decode, encode

from .measure import Result, async_medians, progress

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
TEXT = "A streamed answer of a few paragraphs, 回答. " * 45  # ~2 KB of UTF-8, a typical turn
TURN = rxstream.Response(
    TEXT,
    True,
    90,
    (rxstream.Part("text", TEXT),),
    rxstream.Stats(
        chunks=90,
        time_to_first_chunk=0.4,
        duration=3.2,
        usage=rxstream.Usage({"prompt_tokens": 812, "completion_tokens": 530}),
    ),
    "",
    "stop",
)


async def run(saves: int, turns: int, repetitions: int) -> list[Result]:
    server = os.environ.get("RXSTREAM_BENCH_POSTGRES") or DEFAULT_SERVER
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        progress("stores: left out, psycopg is not installed (pip install 'rxstream[postgres]')")
        return []
    try:
        await (await psycopg.AsyncConnection.connect(server, connect_timeout=5)).close()
    except psycopg.Error as error:
        progress(
            f"stores: left out, no PostgreSQL ({type(error).__name__}); set RXSTREAM_BENCH_POSTGRES to a server's URL"
        )
        return []
    schema = f"rxstream_bench_{os.getpid()}"
    progress(f"stores: {saves} saves and a {turns}-turn session, each way, {repetitions} times")
    try:
        with tempfile.TemporaryDirectory() as directory:
            async with (
                rxstream.PostgresStore(server, schema=schema) as postgres,
                rxstream.PostgresStore(server, schema=schema, table="by_hand") as same_tables,
                rxstream.SQLiteStore(Path(directory) / "bench.db") as sqlite,
                await psycopg.AsyncConnection.connect(server, autocommit=True) as connection,
            ):
                await same_tables.sessions()  # makes the hand loop's table: the store's columns and key
                insert = sql.SQL("INSERT INTO {} (session_key, number, saved_at, {}) VALUES (%b, %s, %s, {})").format(
                    sql.Identifier(schema, "by_hand"),
                    sql.SQL(", ").join(map(sql.Identifier, FIELDS)),
                    sql.SQL(", ").join(
                        sql.SQL("%s" if isinstance(value, bool | int) else "%b") for value in encode(TURN)
                    ),
                )
                key = hashlib.sha256(b"by hand").digest()
                numbers = iter(range(1, 1 << 62))

                async def by_hand() -> None:
                    """The same row, in its own transaction, numbered by a counter it alone writes to."""
                    for _ in range(saves):
                        fields = (value.encode() if isinstance(value, str) else value for value in encode(TURN))
                        async with connection.transaction():
                            await connection.execute(insert, (key, next(numbers), time.time(), *fields))

                async def save_all(store: rxstream.PostgresStore | rxstream.SQLiteStore) -> None:
                    for _ in range(saves):
                        await store.save("saves", TURN)

                saving = await async_medians(
                    {
                        "postgres": lambda: save_all(postgres),
                        "by hand": by_hand,
                        "sqlite": lambda: save_all(sqlite),
                    },
                    repetitions,
                )
                for store in (postgres, sqlite):
                    for _ in range(turns):
                        await store.save("long", TURN)
                select = sql.SQL("SELECT number, saved_at, {} FROM {} WHERE session_key = %b ORDER BY number").format(
                    sql.SQL(", ").join(map(sql.Identifier, FIELDS)), sql.Identifier(schema, "rxstream_turns")
                )
                long_key = hashlib.sha256(b"long").digest()

                async def read_by_hand() -> list[rxstream.Turn]:
                    """The same rows on a connection of its own, made into turns by the same decoding."""
                    rows = await (await connection.execute(select, (long_key,), binary=True)).fetchall()
                    return [
                        decode("long", number, saved_at, fields, store="by hand") for number, saved_at, *fields in rows
                    ]

                assert [t.response for t in await postgres.history("long")] == [TURN] * turns
                assert await read_by_hand() == await postgres.history("long")
                reading = await async_medians(
                    {
                        "postgres": lambda: postgres.history("long"),
                        "by hand": read_by_hand,
                        "sqlite": lambda: sqlite.history("long"),
                    },
                    repetitions,
                )
    finally:
        async with await psycopg.AsyncConnection.connect(server, autocommit=True) as connection:
            await connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    rate = {name: saves / seconds for name, seconds in saving.items()}
    read_ms = {name: seconds * 1e3 for name, seconds in reading.items()}
    return [
        Result(
            "PostgresStore saves vs psycopg by hand (saves/s)",
            rate["postgres"] / rate["by hand"],
            0.8,
            detail=f"{rate['postgres']:,.0f} vs {rate['by hand']:,.0f} saves/s; SQLiteStore {rate['sqlite']:,.0f} saves/s "
            f"(PostgresStore {rate['postgres'] / rate['sqlite']:.2f}x it)",
            extra={f"saves_per_s_{name.replace(' ', '_')}": value for name, value in rate.items()},
        ),
        Result(
            f"PostgresStore history of {turns} turns vs psycopg by hand (time)",
            read_ms["postgres"] / read_ms["by hand"],
            1.25,
            higher_is_better=False,
            detail=f"{read_ms['postgres']:.1f} vs {read_ms['by hand']:.1f} ms; SQLiteStore {read_ms['sqlite']:.1f} ms",
            extra={f"history_ms_{name.replace(' ', '_')}": value for name, value in read_ms.items()},
        ),
    ]
