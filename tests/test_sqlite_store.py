"""SQLiteStore's own promises, on real database files: damaged and foreign files, read-only files and
directories, earlier versions' tables, many processes, and the history command over a file.

What every store promises is in tests/test_store_contract.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import rxstream
from rxstream import operators as rxo
from rxstream.store._sqlite import COLUMNS

from .support import frames_for
from .test_store_contract import CHILD, MULTIMODAL, TOOL_TURN, response


def rxstream_cli(*args: str, cwd: Path | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "rxstream", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.network
async def test_read_back_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "turns.db"
    async with rxstream.SQLiteStore(path) as store:
        await store.save("s", response("first"))
        await store.save("s", response("second", complete=False))
        await store.save("s", MULTIMODAL)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, CHILD, "read", f"sqlite:{path}", "s"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.splitlines() == [
        "1|True|first|[]|None",
        "2|False|second|[]|None",
        "3|True|Look: a cat|['reasoning', 'text', 'image', 'text']|stop",
    ], result.stderr


async def test_memory_store() -> None:
    async with rxstream.SQLiteStore(":memory:") as store:
        await store.save("s", response("x"))
        assert [t.response.text for t in await store.history("s")] == ["x"]
        assert await store.delete("s") == 1 and await store.history("s") == []


async def test_a_corrupt_database_under_persist_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"not sqlite at all" * 300)
    store = rxstream.SQLiteStore(path)
    with pytest.raises(rxstream.TurnNotSavedError) as caught:
        await rxstream.from_frames(frames_for(["a"])).pipe(rxstream.pipeline(), rxo.persist(store, "s"))
    assert isinstance(caught.value.__cause__, rxstream.CorruptStoreError) and caught.value.response.text == "a"
    await store.close()


async def test_a_path_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(
        rxstream.StoreUnavailableError, match="cannot use the session store at .*missing-dir.*unable to open"
    ):
        async with rxstream.SQLiteStore(tmp_path / "missing-dir" / "x.db"):
            pass
    with pytest.raises(rxstream.StoreUnavailableError):
        async with rxstream.SQLiteStore(tmp_path):  # a directory
            pass


async def saved_database(path: Path) -> bytes:
    async with rxstream.SQLiteStore(path) as store:
        for n in range(100):
            await store.save("s", response(f"turn {n} " * 20))
    return path.read_bytes()


def other_programs_database(path: Path) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE turns (player TEXT, move TEXT)")
        connection.execute("INSERT INTO turns VALUES ('white', 'e4')")
    connection.close()
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pages overwritten", "another program's"])
async def test_a_corrupt_file_is_reported_and_left_untouched(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "damaged.db"
    if damage == "garbage":
        path.write_bytes(b"this is not sqlite" * 100)
    elif damage == "another program's":
        other_programs_database(path)
    else:
        good = await saved_database(tmp_path / "good.db")
        half = len(good) // 2
        path.write_bytes(good[:half] if damage == "truncated" else good[:4096] + b"\xff" * (len(good) - 4096))
    before = path.read_bytes()
    with pytest.raises(rxstream.CorruptStoreError, match="is not a usable session database .* it was not modified"):
        async with rxstream.SQLiteStore(path) as store:
            await store.save("s", response("x"))
            await store.history("s")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("damaged*")) == ["damaged.db"]


def users_database(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (name TEXT)")
        connection.execute("INSERT INTO users VALUES ('ada')")
    connection.close()


@pytest.mark.network
async def test_another_programs_database_without_turns_is_corrupt_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    users_database(path)
    before = digest(path)
    for read_only in (False, True):
        with pytest.raises(
            rxstream.CorruptStoreError,
            match=r"app.db is not a usable session database \(it holds users and no 'turns' table\)",
        ):
            async with rxstream.SQLiteStore(path, read_only=read_only) as store:
                await store.history("s")
    result = rxstream_cli("history", "s", "--db", str(path))
    assert (
        result.returncode == 1
        and result.stderr.startswith("rxstream history: error: ")
        and "no 'turns' table" in result.stderr
    )
    assert len(result.stderr.splitlines()) == 1
    assert digest(path) == before and [p.name for p in tmp_path.iterdir()] == ["app.db"]  # not switched to WAL


@pytest.mark.network
def test_history_on_an_empty_file_reads_no_turns_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    result = rxstream_cli("history", "s", "--db", str(path))
    assert result.returncode == 1 and result.stderr == f"rxstream history: no turns saved for session 's' in {path}\n"
    assert path.stat().st_size == 0 and [p.name for p in tmp_path.iterdir()] == ["empty.db"]


def obeying_permissions() -> tuple[str, ...]:
    """A command prefix under which the child obeys file permissions: root ignores them unless it drops CAP_DAC_OVERRIDE."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and setpriv (util-linux) is missing to make a child obey file permissions")
    caps = "-dac_override,-dac_read_search"
    return (setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}")


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Any:
    directory = tmp_path / "ro"
    directory.mkdir()
    yield directory
    directory.chmod(0o755)


@pytest.mark.network
@pytest.mark.parametrize("unmerged", [False, True], ids=["closed cleanly", "unmerged -wal left by a crash"])
async def test_history_reads_a_read_only_database_in_a_read_only_directory(
    read_only_directory: Path, unmerged: bool
) -> None:
    path = read_only_directory / "turns.db"
    await saved_database(path)  # a WAL database, its -wal and -shm removed on close
    if unmerged:  # a writer that never checkpointed: its last turn is only in the -wal, and there is no -shm
        writer = sqlite3.connect(path)
        writer.execute("PRAGMA wal_autocheckpoint=0")
        with writer:
            writer.execute("DELETE FROM turns WHERE number > 1")
        shutil.copy(f"{path}-wal", read_only_directory / "saved-wal")
        writer.close()
        (read_only_directory / "saved-wal").rename(f"{path}-wal")
    files = {p.name: digest(p) for p in read_only_directory.iterdir()}
    path.chmod(0o444)
    read_only_directory.chmod(0o555)
    prefix = obeying_permissions()
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", f"open({str(read_only_directory / 'probe')!r}, 'x')"],
        capture_output=True,
        timeout=60,
    )
    assert probe.returncode != 0, "the child could write in the read-only directory, so this test would prove nothing"
    result = rxstream_cli("history", "s", "--db", str(path), "--limit", "1", prefix=prefix)
    if unmerged:  # reading the file alone (immutable) would show 100 turns where one is left: a stale past
        assert result.returncode == 1 and "cannot use the session store at" in result.stderr and result.stdout == ""
    else:
        assert result.returncode == 0, result.stderr
        assert (
            result.stdout.splitlines()[0].startswith("--- turn 100 · ")
            and result.stdout.splitlines()[1] == "turn 99 " * 20
        )
    assert {p.name: digest(p) for p in read_only_directory.iterdir()} == files


async def test_an_unreadable_turn_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "row.db"
    async with rxstream.SQLiteStore(path) as store:
        await store.save("s", response("fine"))
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE turns SET stats = 'not json'")
    connection.close()
    async with rxstream.SQLiteStore(path) as store:
        with pytest.raises(rxstream.CorruptStoreError, match="turn 1 of session 's' cannot be read"):
            await store.history("s")
        assert await store.sessions() == ["s"]


# The table as rxstream wrote it before it kept tool calls, with a turn as it saved it then.
EARLIER_SCHEMA = """
CREATE TABLE turns (
    session_id TEXT NOT NULL, number INTEGER NOT NULL, saved_at REAL NOT NULL, complete INTEGER NOT NULL,
    text TEXT NOT NULL, reasoning TEXT NOT NULL, finish_reason TEXT, chunks INTEGER NOT NULL,
    parts BLOB NOT NULL, stats BLOB NOT NULL, PRIMARY KEY (session_id, number)
);
INSERT INTO turns VALUES ('chat', 1, 1700000000.0, 1, 'from before', '', 'stop', 2, '[["text","from before"]]', '{"chunks":2}');
"""


def table_columns(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(turns)")]
    connection.close()
    return columns


# The version before thinking blocks and requests were kept: the signatures apart from the joined reasoning.
SIGNATURES_SCHEMA = """
CREATE TABLE turns (
    session_id TEXT NOT NULL, number INTEGER NOT NULL, saved_at REAL NOT NULL, complete INTEGER NOT NULL,
    text TEXT NOT NULL, reasoning TEXT NOT NULL, finish_reason TEXT, chunks INTEGER NOT NULL,
    parts BLOB NOT NULL, stats BLOB NOT NULL, refusal TEXT, tool_calls BLOB NOT NULL DEFAULT '[]',
    reasoning_signatures BLOB NOT NULL DEFAULT '[]', PRIMARY KEY (session_id, number)
);
INSERT INTO turns VALUES ('chat', 1, 1700000000.0, 1, 'from before', 'hm', 'stop', 2,
    '[["reasoning","hm"],["text","from before"]]', '{"chunks":2}', NULL, '[]', '["EqQB"]');
"""


# The version before tool turns: thinking blocks (text, signature, data) and the request, no tool results.
REQUESTS_SCHEMA = """
CREATE TABLE turns (
    session_id TEXT NOT NULL, number INTEGER NOT NULL, saved_at REAL NOT NULL, complete INTEGER NOT NULL,
    text TEXT NOT NULL, reasoning TEXT NOT NULL, finish_reason TEXT, chunks INTEGER NOT NULL,
    parts BLOB NOT NULL, stats BLOB NOT NULL, refusal TEXT, tool_calls BLOB NOT NULL DEFAULT '[]',
    reasoning_signatures BLOB NOT NULL DEFAULT '[]', thinking BLOB, request BLOB, PRIMARY KEY (session_id, number)
);
INSERT INTO turns VALUES ('chat', 1, 1700000000.0, 1, 'from before', 'hm', 'stop', 2,
    '[["reasoning","hm"],["text","from before"]]', '{"chunks":2}', NULL, '[]', '["EqQB"]',
    '[["hm","EqQB",null]]', NULL);
"""


@pytest.mark.network
@pytest.mark.parametrize(
    ("schema", "thinking"),
    [
        (EARLIER_SCHEMA, ()),
        (SIGNATURES_SCHEMA, (rxstream.ThinkingBlock("hm", "EqQB"),)),
        (REQUESTS_SCHEMA, (rxstream.ThinkingBlock("hm", "EqQB"),)),
    ],
    ids=["before tool calls", "before thinking blocks", "before tool turns"],
)
async def test_a_database_of_an_earlier_version_is_read_unchanged_and_migrated_by_its_first_save(
    tmp_path: Path, schema: str, thinking: tuple[rxstream.ThinkingBlock, ...]
) -> None:
    path = tmp_path / "earlier.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(schema)
    connection.close()
    earlier_columns = table_columns(path)
    request = {"model": "m", "messages": [{"role": "user", "content": "weather?"}]}
    async with rxstream.SQLiteStore(path) as store:
        (old,) = await store.history("chat")
        assert (old.response.text, old.response.tool_calls, old.response.refusal) == ("from before", (), None)
        assert (old.response.thinking, old.request) == (thinking, None)  # one signature pairs with the reasoning
        assert table_columns(path) == earlier_columns  # reading does not write
        await store.save("chat", TOOL_TURN, request=request)
        await store.save_tool_results("chat", [rxstream.ToolResult("call_a", "18 °C")])
        assert [(turn.response, turn.request, turn.tool_results) for turn in await store.history("chat")] == [
            (old.response, None, ()),
            (TOOL_TURN, request, ()),
            (rxstream.Response("", True, 0), None, (rxstream.ToolResult("call_a", "18 °C"),)),
        ]
    assert table_columns(path)[: len(earlier_columns)] == earlier_columns
    assert table_columns(path)[len(earlier_columns) :] == list(COLUMNS[len(earlier_columns) :])
    result = rxstream_cli("history", "chat", "--db", str(path))
    assert result.returncode == 0, result.stderr
    assert "from before" in result.stdout and '[tool call 0] get_weather call_a {"city": "Paris"}' in result.stdout


@pytest.mark.network
def test_history_command_shows_tool_calls_and_the_refusal(tmp_path: Path) -> None:
    path = tmp_path / "cli-tools.db"

    async def fill() -> None:
        async with rxstream.SQLiteStore(path) as store:
            await store.save("agent", TOOL_TURN)

    asyncio.run(fill())
    result = rxstream_cli("history", "agent", "--db", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "Checking.",
        "[refusal] I'd rather not say the date.",
        '[tool call 0] get_weather call_a {"city": "Paris"}',
        '[tool call 1] get_time call_b {"tz": "Europe/Par',
    ]


@pytest.mark.network
def test_history_command(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"

    async def fill() -> None:
        async with rxstream.SQLiteStore(path) as store:
            await store.save("chat", response("first answer"))
            await store.save("chat", response("second, cut", complete=False))
            await store.save("chat", MULTIMODAL)

    asyncio.run(fill())
    result = rxstream_cli("history", "chat", "--db", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("--- turn 1 · ") and lines[0].endswith(" · complete · 12 chunks")
    assert lines[1] == "first answer"
    assert lines[2].startswith("--- turn 2 · ") and " · INCOMPLETE · " in lines[2] and lines[3] == "second, cut"
    assert lines[4].startswith("--- turn 3 · ") and " · complete (stop) · 3 chunks" in lines[4]
    assert lines[5:] == ["[reasoning] think", "Look: ", "[image] https://img/1.png", "a cat"]
    latest = rxstream_cli("history", "chat", "--db", str(path), "--limit", "1")
    assert latest.stdout.splitlines()[0].startswith("--- turn 3 · ")


@pytest.mark.network
def test_history_command_without_a_database_creates_none(tmp_path: Path) -> None:
    result = rxstream_cli("history", "chat", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr
        == "rxstream history: error: StoreUnavailableError: cannot use the session store at rxstream.db: no such file; check the path and its permissions.\n"
    )
    assert list(tmp_path.iterdir()) == []
    asyncio.run(saved_database(tmp_path / "rxstream.db"))
    unknown = rxstream_cli("history", "nobody", cwd=tmp_path)
    assert unknown.returncode == 1 and "no turns saved for session 'nobody'" in unknown.stderr


@pytest.mark.network
def test_demo_saves_its_turn(tmp_path: Path) -> None:
    result = rxstream_cli("demo", "--size", "200", "--delay", "0", "--faults", "reorder=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    history = rxstream_cli("history", "demo", cwd=tmp_path)
    assert history.returncode == 0 and history.stdout.splitlines()[1] in result.stdout


async def test_a_save_waits_out_another_writer_holding_the_lock_past_sqlites_default_timeout(tmp_path: Path) -> None:
    """Another process's write transaction, held longer than sqlite3's default 5 s busy timeout
    (before, this save failed with "database is locked"): the save waits for it, then goes in."""
    path = tmp_path / "shared.db"
    async with rxstream.SQLiteStore(path) as store:
        await store.save("s", response("first"))
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "INSERT INTO turns SELECT session_id, 2, saved_at, complete, 'other', reasoning, finish_reason, chunks, parts, stats, refusal, tool_calls, reasoning_signatures, thinking, request, tool_results FROM turns"
        )
        release = asyncio.get_running_loop().call_later(5.5, other.execute, "COMMIT")
        try:
            turn = await store.save("s", response("mine"))
        finally:
            release.cancel()
            other.close()
        assert turn.number == 3
        assert [(t.number, t.response.text) for t in await store.history("s")] == [
            (1, "first"),
            (2, "other"),
            (3, "mine"),
        ]
