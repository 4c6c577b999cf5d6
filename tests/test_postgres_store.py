"""PostgresStore's own promises, on the test server (tests/services.py): its tables and their version, a
server that is down or ends the connections, the password kept out of every report, a pool of the
user's, and the history and demo commands over a postgresql:// URL.

What every store promises is in tests/test_store_contract.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

import rxstream
from rxstream import operators as rxo

from .services import POSTGRES, postgres_schema
from .support import frames_for
from .test_store_contract import TOOL_TURN, response

pytestmark = pytest.mark.network


def pool_tasks() -> set[asyncio.Task[object]]:
    """The psycopg_pool workers and schedulers still running in this loop."""
    return {task for task in asyncio.all_tasks() if re.fullmatch(r"pool-\d+-(worker-\d+|scheduler)", task.get_name())}


@pytest.fixture(autouse=True)
async def no_pool_task_left() -> AsyncIterator[None]:
    """Each test ends with no pool task running. Its workers catch CancelledError and go on with their queue: one
    left running could keep the loop's teardown waiting for ever. Cancelled here again and again for 5 s, it fails
    the test instead."""
    yield
    left = pool_tasks()
    for _ in range(50):
        if not left:
            break
        for task in left:
            task.cancel()
        await asyncio.sleep(0.1)
        left = {task for task in left if not task.done()}
    assert not pool_tasks(), f"pool tasks still running: {sorted(task.get_name() for task in pool_tasks())}"


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres_schema() as name:
        yield name


def server() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(POSTGRES.url, autocommit=True)


def tables(schema: str) -> list[tuple[str, str]]:
    with server() as connection:
        rows = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s"
            " ORDER BY table_name, ordinal_position",
            (schema,),
        ).fetchall()
    return [(str(table), str(column)) for table, column in rows]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_tables_are_made_on_first_use_in_the_schema_and_table_asked_for(schema: str) -> None:
    assert tables(schema) == []
    odd = 'turns "quoted"; DROP'
    async with rxstream.PostgresStore(POSTGRES.url, schema=schema, table=odd) as store:
        await store.save("s", response("in the odd table"))
    async with rxstream.PostgresStore(POSTGRES.url, schema=schema) as other:
        assert await other.sessions() == []  # another table name, another store
        await other.save("s", response("in the default table"))
    names = {table for table, _ in tables(schema)}
    assert names == {
        odd,
        f"{odd}_sessions",
        f"{odd}_schema",
        "rxstream_turns",
        "rxstream_turns_sessions",
        "rxstream_turns_schema",
    }
    with server() as connection:
        version = connection.execute(sql.SQL("SELECT version FROM {}").format(sql.Identifier(schema, f"{odd}_schema")))
        assert version.fetchall() == [(3,)]
    async with rxstream.PostgresStore(POSTGRES.url, schema=schema, table=odd) as again:
        assert [t.response.text for t in await again.history("s")] == ["in the odd table"]


@pytest.mark.parametrize(
    ("statements", "problem"),
    [
        (
            [
                "CREATE TABLE {schema}.rxstream_turns (player text, move text)",
                "INSERT INTO {schema}.rxstream_turns VALUES ('white', 'e4')",
            ],
            "already has tables of other columns: rxstream_turns \\(player, move\\)",
        ),
        (["CREATE VIEW {schema}.rxstream_turns_sessions AS SELECT 1 AS one"], "rxstream_turns_sessions \\(one\\)"),
        (
            ["UPDATE {schema}.rxstream_turns_schema SET version = 4"],
            "holds the versions \\[4\\], this rxstream knows 3",
        ),
    ],
    ids=["another program's table", "a view of the name", "a later version"],
)
async def test_tables_that_are_not_ours_are_corrupt_and_left_untouched(
    schema: str, statements: list[str], problem: str
) -> None:
    if "UPDATE" in statements[0]:
        async with rxstream.PostgresStore(POSTGRES.url, schema=schema) as store:
            await store.save("s", response("x"))
    with server() as connection:
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for statement in statements:
            connection.execute(statement.format(schema=schema))
    before = tables(schema)
    for read_only in (False, True):
        with pytest.raises(
            rxstream.CorruptStoreError, match=f"is not a usable session database .*{problem}.* it was not modified"
        ):
            async with rxstream.PostgresStore(POSTGRES.url, schema=schema, read_only=read_only) as store:
                await store.save("s", response("y"))
    assert tables(schema) == before


# What each earlier version's turns table lacked: version 1 thinking blocks and requests, version 2 tool turns.
DROPPED = {1: ("thinking", "request", "tool_results"), 2: ("tool_results",)}


@pytest.mark.parametrize("version", [1, 2])
async def test_earlier_versions_tables_are_read_as_they_are_and_migrated_by_a_writer(schema: str, version: int) -> None:
    async with rxstream.PostgresStore(POSTGRES.url, schema=schema) as store:
        await store.save(
            "s", rxstream.Response("answer", True, 3, reasoning="hm", thinking=(rxstream.ThinkingBlock("hm", "S1"),))
        )
    with server() as connection:  # back to the earlier version: its tables as it made them
        for column in DROPPED[version]:
            connection.execute(
                sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                    sql.Identifier(schema, "rxstream_turns"), sql.Identifier(column)
                )
            )
        connection.execute(
            sql.SQL("UPDATE {} SET version = %s").format(sql.Identifier(schema, "rxstream_turns_schema")), (version,)
        )
    before = tables(schema)
    async with rxstream.PostgresStore(POSTGRES.url, schema=schema, read_only=True) as reader:
        (old,) = await reader.history("s")
    assert tables(schema) == before  # a reader changes nothing
    # the one signature pairs with the joined reasoning, as version 1 kept them
    assert (old.response.thinking, old.request, old.role) == ((rxstream.ThinkingBlock("hm", "S1"),), None, "assistant")
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with rxstream.PostgresStore(POSTGRES.url, schema=schema) as writer:
        assert [t.response for t in await writer.history("s")] == [old.response]
        saved = await writer.save("s", rxstream.Response("more", True, 1), request=request)
        results = await writer.save_tool_results("s", [rxstream.ToolResult("call_1", "18 °C")])
        assert await writer.history("s") == [old, saved, results] and saved.request == request
        assert results.tool_results == (rxstream.ToolResult("call_1", "18 °C"),)
    with server() as connection:
        versions = connection.execute(
            sql.SQL("SELECT version FROM {}").format(sql.Identifier(schema, "rxstream_turns_schema"))
        )
        assert versions.fetchall() == [(3,)]


async def test_a_read_only_store_reads_no_tables_as_empty_and_makes_none(schema: str) -> None:
    async with rxstream.PostgresStore(POSTGRES.url, schema=schema, read_only=True) as reader:
        assert await reader.history("s") == [] and await reader.sessions() == []
    with server() as connection:
        exists = connection.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    assert exists == (0,)


async def test_a_server_that_is_down_is_unavailable_naming_the_host_never_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    url = f"postgresql://writer:pa55-w0rd%2F@127.0.0.1:{port}/chats"
    store = rxstream.PostgresStore(url, timeout=0.5)
    assert (
        repr(store)
        == f"PostgresStore('postgresql://writer@127.0.0.1:{port}/chats', schema='public', table='rxstream_turns')"
    )
    with pytest.raises(
        rxstream.StoreUnavailableError, match=f"at postgresql://writer@127.0.0.1:{port}/chats: .*Connection refused"
    ) as caught:
        await store.save("s", response("x"))
    with pytest.raises(rxstream.TurnNotSavedError) as through_persist:
        await rxstream.from_frames(frames_for(["kept"])).pipe(rxstream.pipeline(), rxo.persist(store, "s"))
    assert through_persist.value.response.text == "kept"
    assert isinstance(through_persist.value.__cause__, rxstream.StoreUnavailableError)
    await store.close()
    with pytest.raises(rxstream.StoreUnavailableError, match="not a postgresql:// URL"):
        rxstream.PostgresStore("host=x password=pa55-w0rd/ broken")
    reports = [
        repr(store),
        *("".join(traceback.format_exception(e.value)) for e in (caught, through_persist)),
        caplog.text,
    ]
    for report in reports:
        assert "pa55" not in report and "w0rd" not in report
    assert "Connection refused" in caplog.text  # the pool's own log was captured, and it too is clean


async def test_a_store_closed_while_its_pool_is_still_connecting_leaves_no_worker_running() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection and never answers: the pool's workers wait in connect

    peer = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = peer.sockets[0].getsockname()[1]
    store = rxstream.PostgresStore(f"postgresql://postgres@127.0.0.1:{port}/test", timeout=0.5)
    with pytest.raises(rxstream.StoreUnavailableError, match="timeout"):
        await store.save("s", response("x"))
    assert pool_tasks()  # the workers still connecting
    await asyncio.wait_for(store.close(), 10)
    # before: close waited 5 s, logged "couldn't stop task 'pool-1-worker-0'" and left them connecting (up to 130 s)
    assert not pool_tasks()
    peer.close()
    await peer.wait_closed()


async def waiting_backend(application_name: str) -> int:
    """The backend of this test's save that waits for a lock (another run's, on the same server, is not ours to end)."""
    with server() as watcher:
        for _ in range(200):
            waiting = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH counter%%'"
                " AND application_name = %s",
                (application_name,),
            ).fetchall()
            if waiting:
                return int(str(waiting[0][0]))
            await asyncio.sleep(0.05)
    raise AssertionError("the save never waited for the lock")


async def test_connections_the_server_ends_fail_typed_and_later_saves_go_through_the_same_pool(schema: str) -> None:
    name = f"rxstream-{schema}"
    url = make_conninfo(POSTGRES.url, application_name=name)
    async with rxstream.PostgresStore(url, schema=schema, max_connections=4) as store:
        await asyncio.gather(*(store.save("s", response(f"before {n}")) for n in range(8)))
        async with await psycopg.AsyncConnection.connect(POSTGRES.url) as locker:  # holds the session's row
            await locker.execute(
                sql.SQL("SELECT * FROM {} FOR UPDATE").format(sql.Identifier(schema, "rxstream_turns_sessions"))
            )
            saving = asyncio.create_task(store.save("s", response("cut off")))
            backend = await waiting_backend(name)
            with server() as admin:  # what a restart does to each backend: to the one saving
                admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
            with pytest.raises(rxstream.StoreUnavailableError, match="terminat"):
                await asyncio.wait_for(saving, 60)  # bounded: a save left waiting fails the test, never hangs the suite
        with server() as admin:  # and to the idle ones in the pool
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchone()
        assert ended is not None and int(str(ended[0])) >= 1
        after = [await store.save("s", response(f"after {n}")) for n in range(5)]
        turns = await store.history("s")
    assert [t.number for t in turns] == list(range(1, 14)) and turns[-5:] == after  # the cut-off save left no gap
    assert sorted(t.response.text for t in turns[:8]) == sorted(f"before {n}" for n in range(8))


async def test_a_pool_of_the_users_is_used_and_left_open(schema: str) -> None:
    async with AsyncConnectionPool(POSTGRES.url, min_size=1, max_size=2, open=False) as pool:  # not autocommit
        async with rxstream.PostgresStore(pool, schema=schema) as store:
            await store.save("s", TOOL_TURN)
            assert "PostgresStore(" in repr(store) and not pool.closed
        assert not pool.closed
        async with rxstream.PostgresStore(pool, schema=schema) as again:
            assert [t.response for t in await again.history("s")] == [TOOL_TURN]
            assert await again.delete("s") == 1


def rxstream_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rxstream", *args], capture_output=True, text=True, timeout=60)


def test_history_and_demo_commands_over_a_postgresql_url(schema: str) -> None:
    parts = urlsplit(POSTGRES.url)  # with a password, which trust authentication ignores: no report may show it
    url = parts._replace(
        netloc=f"{parts.username or 'postgres'}:s3cr3t-pw@{parts.hostname}:{parts.port or 5432}"
    ).geturl()
    nothing = rxstream_cli("history", "demo", "--db", url, "--schema", schema)
    assert nothing.returncode == 1 and "no turns saved for session 'demo'" in nothing.stderr
    assert tables(schema) == []  # reading made nothing
    demo = rxstream_cli(
        "demo", "--size", "200", "--delay", "0", "--faults", "reorder=3", "--db", url, "--schema", schema
    )
    assert demo.returncode == 0, demo.stderr
    assert f"rxstream history demo --db postgresql://{parts.username or 'postgres'}@" in demo.stdout
    assert demo.stdout.rstrip().endswith(f" --schema {schema}")
    history = rxstream_cli("history", "demo", "--db", url, "--schema", schema)
    assert history.returncode == 0, history.stderr
    assert history.stdout.splitlines()[0].startswith("--- turn 1 · ") and history.stdout.splitlines()[1] in demo.stdout
    assert all("s3cr3t" not in text for text in (nothing.stderr, demo.stdout, demo.stderr, history.stdout))
