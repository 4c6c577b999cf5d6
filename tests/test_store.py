"""The session store and persist, on real database files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import reactivex
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from reactivex import operators as ops
from reactivex.scheduler import NewThreadScheduler

import rxstream
from rxstream import operators as rxo

from .support import frame, frames_for

_T = TypeVar("_T")
CHILD = str(Path(__file__).with_name("store_child.py"))
MULTIMODAL = rxstream.Response(
    "Look: a cat",
    True,
    3,
    (
        rxstream.Part("reasoning", "think"),
        rxstream.Part("text", "Look: "),
        rxstream.Part("image", "https://img/1.png"),
        rxstream.Part("text", "a cat"),
    ),
    rxstream.Stats(
        chunks=3, duplicates=1, retries=2, time_to_first_chunk=0.125, duration=0.5, usage={"total_tokens": 9}
    ),
    "think",
    "stop",
)


def response(text: str, complete: bool = True) -> rxstream.Response:
    return rxstream.Response(text, complete, len(text))


def rxstream_cli(*args: str, cwd: Path | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "rxstream", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_round_trip_through_a_file_read_by_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "turns.db"
    async with rxstream.SQLiteStore(path) as store:
        first = await store.save("s1", response("hello"))
        await store.save("s1", response("cut sh", complete=False))
        await store.save("s2", MULTIMODAL)
    async with rxstream.SQLiteStore(path) as reopened:
        turns = await reopened.history("s1")
        assert [(t.number, t.response.text, t.response.complete) for t in turns] == [
            (1, "hello", True),
            (2, "cut sh", False),
        ]
        assert turns[0] == first  # saved_at to the bit
        (turn,) = await reopened.history("s2")
        assert turn.response == MULTIMODAL  # parts, stats, reasoning and finish reason intact
        assert await reopened.sessions() == ["s1", "s2"]
        assert [t.number for t in await reopened.history("s1", limit=1)] == [2]
        assert await reopened.history("s1", limit=0) == []


@pytest.mark.network
async def test_read_back_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "turns.db"
    async with rxstream.SQLiteStore(path) as store:
        await store.save("s", response("first"))
        await store.save("s", response("second", complete=False))
        await store.save("s", MULTIMODAL)
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, CHILD, "read", str(path), "s"], capture_output=True, text=True, timeout=60
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


async def test_200_concurrent_streams_into_one_store(tmp_path: Path) -> None:
    async with rxstream.SQLiteStore(tmp_path / "many.db") as store:

        async def one(n: int) -> rxstream.Response:
            pieces = [f"<{n}:{i}>" for i in range(5)]
            response: rxstream.Response = await rxstream.from_frames(frames_for(pieces, order=[1, 0, 2, 4, 3])).pipe(
                rxstream.pipeline(), rxo.persist(store, f"session-{n % 50}")
            )
            return response

        responses = await asyncio.gather(*(one(n) for n in range(200)))
        assert all(r.complete for r in responses)
        assert await store.sessions() == [f"session-{s}" for s in range(50)]
        for session in range(50):
            turns = await store.history(f"session-{session}")
            assert [t.number for t in turns] == [1, 2, 3, 4]
            owners = sorted(int(t.response.text[1 : t.response.text.index(":")]) for t in turns)
            assert owners == [session + 50 * k for k in range(4)]
            for turn in turns:  # no turn mixes two streams
                n = int(turn.response.text[1 : turn.response.text.index(":")])
                assert turn.response.text == "".join(f"<{n}:{i}>" for i in range(5))
                assert turn.response.stats.out_of_order > 0


@pytest.mark.network
async def test_killed_while_saving_loses_no_acknowledged_turn(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, CHILD, "save", str(path), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    acknowledged = 0
    try:
        while acknowledged < 40:  # the child prints a turn's number once its save has returned
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line, "the child stopped saving"
            acknowledged = int(line)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    async with rxstream.SQLiteStore(path) as store:
        turns = await store.history("crash")
    # every acknowledged turn is there, intact, and so are those saved after the last line read
    assert len(turns) >= acknowledged
    assert [(t.number, t.response.text) for t in turns] == [(n, f"turn {n} " * 50) for n in range(1, len(turns) + 1)]


async def test_persist_saves_the_partial_and_passes_the_error_on(tmp_path: Path) -> None:
    async with rxstream.SQLiteStore(tmp_path / "p.db") as store:
        with pytest.raises(rxstream.FrameError) as caught:
            await rxstream.from_frames([frame(0, "kept "), frame(1, "too"), b"{broken"]).pipe(
                rxstream.pipeline(), rxo.persist(store, "s")
            )
        (turn,) = await store.history("s")
        assert turn.response == caught.value.partial
        assert turn.response.text == "kept too" and not turn.response.complete


class GatedStore:
    """A store whose saves wait until the test opens the gate."""

    def __init__(self) -> None:
        self.saving = asyncio.Event()
        self.gate = asyncio.Event()
        self.saved: list[rxstream.Response] = []

    async def save(self, session_id: str, response: rxstream.Response) -> rxstream.Turn:
        self.saving.set()
        await self.gate.wait()
        self.saved.append(response)
        return rxstream.Turn(session_id, len(self.saved), response, 0.0)


@pytest.mark.parametrize("frames", [frames_for(["a", "b"]), frames_for(["a", "b"])[:1]], ids=["complete", "partial"])
async def test_persist_passes_nothing_on_before_the_save_returned(frames: list[bytes]) -> None:
    store = GatedStore()
    heard: list[str] = []
    pipeline = rxstream.from_frames(frames).pipe(
        rxstream.pipeline(),
        rxo.persist(store, "s"),  # type: ignore[arg-type]  # only save is needed
        ops.do_action(
            lambda _: heard.append("next"), lambda _: heard.append("error"), lambda: heard.append("completed")
        ),
    )
    awaited = asyncio.ensure_future(asyncio.wait_for(pipeline, 30))
    await asyncio.wait_for(store.saving.wait(), 30)
    assert heard == [] and not awaited.done()
    store.gate.set()
    await asyncio.wait([awaited])
    assert len(store.saved) == 1 and heard == (["next", "completed"] if store.saved[0].complete else ["error"])


async def test_persist_saves_every_response_in_order_before_passing_it_on() -> None:
    store = GatedStore()
    store.gate.set()
    responses = [response("one"), response("two"), response("three")]
    saved_when_heard: list[int] = []
    heard = await reactivex.from_iterable(responses).pipe(
        rxo.persist(store, "s"),  # type: ignore[arg-type]
        ops.do_action(lambda _: saved_when_heard.append(len(store.saved))),
        ops.to_list(),
    )
    assert heard == store.saved == responses and saved_when_heard == [1, 2, 3]


async def test_persist_brings_events_from_another_thread_back_to_the_loop(tmp_path: Path) -> None:
    threads: set[int] = set()
    loop = asyncio.get_running_loop()
    loop.set_debug(True)  # asyncio then refuses to make a task from another thread, instead of leaving the loop asleep
    try:
        async with rxstream.SQLiteStore(tmp_path / "thread.db") as store:
            pipeline = rxstream.from_frames(frames_for(["a", "b"])).pipe(
                ops.subscribe_on(NewThreadScheduler()),
                rxstream.pipeline(),
                rxo.persist(store, "s"),
                ops.do_action(lambda _: threads.add(threading.get_ident())),
            )
            heard = await asyncio.wait_for(pipeline, 10)
            assert heard.text == "ab" and [t.response for t in await store.history("s")] == [heard]
    finally:
        loop.set_debug(False)
    assert threads == {threading.get_ident()}


class BrokenStore:
    async def save(self, session_id: str, response: rxstream.Response) -> rxstream.Turn:
        raise OSError("disk full")


@pytest.mark.parametrize("frames", [frames_for(["a", "b"]), frames_for(["a", "b"])[:1]], ids=["complete", "partial"])
async def test_a_failed_save_is_a_store_error_holding_the_response(frames: list[bytes]) -> None:
    with pytest.raises(rxstream.TurnNotSavedError, match=r"session 's' .* was not saved: OSError: disk full") as caught:
        await rxstream.from_frames(frames).pipe(rxstream.pipeline(), rxo.persist(BrokenStore(), "s"))  # type: ignore[arg-type]
    assert isinstance(caught.value, rxstream.StoreError) and isinstance(caught.value.__cause__, OSError)
    assert caught.value.response.text == "ab"[: len(frames)] and caught.value.response.complete == (len(frames) == 2)


async def test_a_corrupt_database_under_persist_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"not sqlite at all" * 300)
    store = rxstream.SQLiteStore(path)
    with pytest.raises(rxstream.TurnNotSavedError) as caught:
        await rxstream.from_frames(frames_for(["a"])).pipe(rxstream.pipeline(), rxo.persist(store, "s"))
    assert isinstance(caught.value.__cause__, rxstream.CorruptStoreError) and caught.value.response.text == "a"
    await store.close()


def test_persist_outside_an_event_loop_says_so() -> None:
    with pytest.raises(RuntimeError, match="persist saves on an asyncio event loop"):
        rxstream.from_frames(frames_for(["a"])).pipe(rxo.persist(rxstream.SQLiteStore(":memory:"), "s")).subscribe()  # type: ignore[arg-type]  # frames, not a Response: it fails before it could matter


@pytest.mark.parametrize(
    ("session_id", "problem"),
    [
        ("", "must be a non-empty string"),
        (None, "must be a non-empty string"),
        (42, "must be a non-empty string"),
        (b"bytes", "must be a non-empty string"),
        ("chat-\udcff", r"must be valid Unicode text \(surrogates not allowed at position 5\)"),
    ],
)
async def test_bad_session_ids(session_id: object, problem: str) -> None:
    async with rxstream.SQLiteStore(":memory:") as store:
        for call in (store.save(session_id, response("x")), store.history(session_id), store.delete(session_id)):  # type: ignore[arg-type]
            with pytest.raises(rxstream.InvalidSessionError, match=f"session id {problem}, not "):
                await call
        with pytest.raises(rxstream.InvalidSessionError):
            rxo.persist(store, session_id)  # type: ignore[arg-type]


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


async def test_a_read_only_store_refuses_to_write(tmp_path: Path) -> None:
    path = tmp_path / "turns.db"
    before = await saved_database(path)
    async with rxstream.SQLiteStore(path, read_only=True) as store:
        assert len(await store.history("s")) == 100 and await store.sessions() == ["s"]
        for call in (store.save("s", response("x")), store.delete("s")):
            with pytest.raises(rxstream.StoreUnavailableError, match="it was opened read-only"):
                await call
    assert path.read_bytes() == before


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


TOOL_TURN = rxstream.Response(
    "Checking.",
    True,
    9,
    (rxstream.Part("text", "Checking."),),
    rxstream.Stats(chunks=9),
    "",
    "tool_calls",
    (
        rxstream.ToolCall(0, "call_a", "get_weather", '{"city": "Paris"}'),
        rxstream.ToolCall(1, "call_b", "get_time", '{"tz": "Europe/Par'),
    ),
    "I'd rather not say the date.",
    ("EqQBCgIYAhIM",),
)
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


async def test_tool_calls_refusal_and_signatures_are_saved_with_the_turn(tmp_path: Path) -> None:
    path = tmp_path / "tools.db"
    async with rxstream.SQLiteStore(path) as store:
        await store.save("s", TOOL_TURN)
    async with rxstream.SQLiteStore(path) as reopened:
        (turn,) = await reopened.history("s")
    assert turn.response == TOOL_TURN


@pytest.mark.network
async def test_a_database_of_an_earlier_version_is_read_unchanged_and_migrated_by_its_first_save(
    tmp_path: Path,
) -> None:
    path = tmp_path / "earlier.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(EARLIER_SCHEMA)
    connection.close()
    earlier_columns = table_columns(path)
    async with rxstream.SQLiteStore(path) as store:
        (old,) = await store.history("chat")
        assert (old.response.text, old.response.tool_calls, old.response.refusal) == ("from before", (), None)
        assert table_columns(path) == earlier_columns  # reading does not write
        await store.save("chat", TOOL_TURN)
        assert [turn.response for turn in await store.history("chat")] == [old.response, TOOL_TURN]
    assert (
        table_columns(path)[: len(earlier_columns)] == earlier_columns
        and len(table_columns(path)) == len(earlier_columns) + 3
    )
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


async def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = rxstream.SQLiteStore(tmp_path / "closed.db")
    await store.save("s", response("x"))
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(rxstream.StoreClosedError, match="is closed"):
        await store.history("s")


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
        == "rxstream history: error: cannot use the session store at rxstream.db: no such file; check the path and its permissions.\n"
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


SESSIONS = st.sampled_from(["a", "b", "c"])


class StoreAgainstModel(RuleBasedStateMachine):
    """Any sequence of save/history/delete/sessions, across reopenings of the file, agrees with a dict of lists."""

    @initialize()
    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.directory = tempfile.mkdtemp()
        self.path = Path(self.directory) / "model.db"
        self.store = rxstream.SQLiteStore(self.path)
        self.model: dict[str, list[tuple[str, bool]]] = {}

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return self.loop.run_until_complete(coroutine)

    @rule(session=SESSIONS, text=st.text(max_size=20), complete=st.booleans())
    def save(self, session: str, text: str, complete: bool) -> None:
        turn = self.run(self.store.save(session, response(text, complete)))
        self.model.setdefault(session, []).append((text, complete))
        assert (turn.session_id, turn.number) == (session, len(self.model[session]))

    @rule(session=SESSIONS, limit=st.none() | st.integers(0, 4))
    def history(self, session: str, limit: int | None) -> None:
        turns = self.run(self.store.history(session, limit))
        saved = self.model.get(session, [])
        first = 0 if limit is None else max(0, len(saved) - limit)
        assert [(t.number, t.response.text, t.response.complete) for t in turns] == [
            (number, text, complete) for number, (text, complete) in enumerate(saved, 1)
        ][first:]

    @rule(session=SESSIONS)
    def delete(self, session: str) -> None:
        assert self.run(self.store.delete(session)) == len(self.model.pop(session, []))

    @rule()
    def reopen(self) -> None:
        self.run(self.store.close())
        self.store = rxstream.SQLiteStore(self.path)

    @invariant()
    def same_sessions(self) -> None:
        if hasattr(self, "store"):
            assert self.run(self.store.sessions()) == list(self.model)  # in the order of their first turn

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.run(self.store.close())
            self.loop.close()
            shutil.rmtree(self.directory)


TestStoreAgainstModel = StoreAgainstModel.TestCase
TestStoreAgainstModel.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
