"""The session store, on real database files."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import rxstream
from rxstream import operators as rxo

from .support import frame, frames_for

CHILD = str(Path(__file__).with_name("store_child.py"))


def response(text: str, complete: bool = True, **extra: object) -> rxstream.Response:
    return rxstream.Response(text, complete, len(text), **extra)  # type: ignore[arg-type]


async def test_round_trip_through_a_file_read_by_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "turns.db"
    stats = rxstream.Stats(chunks=3, duplicates=1, retries=2, duration=0.5, usage={"total_tokens": 9})
    multimodal = rxstream.Response(
        "Look: a cat",
        True,
        3,
        (rxstream.Part("reasoning", "think"), rxstream.Part("text", "Look: a cat"), rxstream.Part("image", "https://img/1.png")),
        stats,
        "think",
        "stop",
    )
    async with rxstream.SQLiteStore(path) as store:
        first = await store.save("s1", response("hello"))
        await store.save("s1", response("cut sh", complete=False))
        await store.save("s2", multimodal)
    async with rxstream.SQLiteStore(path) as reopened:
        turns = await reopened.history("s1")
        assert [(t.number, t.response.text, t.response.complete) for t in turns] == [(1, "hello", True), (2, "cut sh", False)]
        assert turns[0].saved_at == first.saved_at
        (turn,) = await reopened.history("s2")
        assert turn.response == multimodal  # parts, stats, reasoning and finish reason intact
        assert await reopened.sessions() == ["s1", "s2"]
        assert [t.number for t in await reopened.history("s1", limit=1)] == [2]


async def test_read_back_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "turns.db"
    async with rxstream.SQLiteStore(path) as store:
        await store.save("s", response("first"))
        await store.save("s", response("second", complete=False))
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, CHILD, "read", str(path), "s"], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.splitlines() == ["1|True|first", "2|False|second"], result.stderr


async def test_memory_store() -> None:
    async with rxstream.SQLiteStore(":memory:") as store:
        await store.save("s", response("x"))
        assert [t.response.text for t in await store.history("s")] == ["x"]
        assert await store.delete("s") == 1 and await store.history("s") == []


async def test_200_concurrent_streams_into_one_store(tmp_path: Path) -> None:
    async with rxstream.SQLiteStore(tmp_path / "many.db") as store:

        async def one(n: int) -> None:
            pieces = [f"<{n}:{i}>" for i in range(5)]
            await rxstream.from_frames(frames_for(pieces, order=[1, 0, 2, 4, 3])).pipe(
                rxstream.pipeline(), rxo.persist(store, f"session-{n % 50}")
            )

        await asyncio.gather(*(one(n) for n in range(200)))
        for session in range(50):
            turns = await store.history(f"session-{session}")
            assert [t.number for t in turns] == [1, 2, 3, 4]
            owners = sorted(int(t.response.text[1 : t.response.text.index(":")]) for t in turns)
            assert owners == [session + 50 * k for k in range(4)]
            for turn in turns:  # no turn mixes two streams
                n = int(turn.response.text[1 : turn.response.text.index(":")])
                assert turn.response.text == "".join(f"<{n}:{i}>" for i in range(5))


async def test_killed_while_saving_loses_no_acknowledged_turn(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    child = await asyncio.create_subprocess_exec(sys.executable, CHILD, "save", str(path), stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    acknowledged = 0
    try:
        while acknowledged < 40:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            acknowledged = int(line)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    async with rxstream.SQLiteStore(path) as store:
        numbers = [t.number for t in await store.history("crash")]
    # every acknowledged turn is there, and nothing else is broken (saves after the last line read count too)
    assert len(numbers) >= acknowledged and numbers == list(range(1, len(numbers) + 1))


async def test_persist_saves_the_partial_and_passes_the_error_on(tmp_path: Path) -> None:
    async with rxstream.SQLiteStore(tmp_path / "p.db") as store:
        with pytest.raises(rxstream.IncompleteStreamError) as caught:
            await rxstream.from_frames([frame(0, "kept "), frame(1, "too"), b"{broken"]).pipe(
                rxstream.pipeline(), rxo.persist(store, "s")
            )
        assert isinstance(caught.value.__cause__, rxstream.FrameError)
        (turn,) = await store.history("s")
        assert turn.response.text == "kept too" and not turn.response.complete


async def test_stream_saves_its_turn(tmp_path: Path) -> None:
    from rxstream.server import ReferenceServer

    async with ReferenceServer("streamed and saved", chunk_size=4) as server, rxstream.SQLiteStore(tmp_path / "s.db") as store:
        response = await rxstream.stream(server.uri, request={}, store=store, session_id="chat")
        (turn,) = await store.history("chat")
    assert turn.response.text == response.text == "streamed and saved"


async def test_a_failing_store_is_a_store_error() -> None:
    class Broken:
        async def save(self, session_id: str, response: rxstream.Response) -> rxstream.Turn:
            raise OSError("disk full")

    with pytest.raises(rxstream.StoreError, match="disk full"):
        await rxstream.from_frames(frames_for(["a"])).pipe(rxstream.pipeline(), rxo.persist(Broken(), "s"))  # type: ignore[arg-type]


@pytest.mark.parametrize("session_id", ["", None, 42, b"bytes"])
async def test_bad_session_ids(session_id: object) -> None:
    async with rxstream.SQLiteStore(":memory:") as store:
        with pytest.raises(rxstream.InvalidSessionError, match="non-empty string"):
            await store.save(session_id, response("x"))  # type: ignore[arg-type]
    with pytest.raises(rxstream.InvalidSessionError):
        rxo.persist(store, session_id)  # type: ignore[arg-type]


async def test_a_path_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(rxstream.StoreUnavailableError, match="cannot use the session store"):
        async with rxstream.SQLiteStore(tmp_path / "missing-dir" / "x.db"):
            pass


async def test_a_corrupt_file_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    garbage = b"this is not sqlite" * 100
    path.write_bytes(garbage)
    with pytest.raises(rxstream.CorruptStoreError, match="not modified"):
        async with rxstream.SQLiteStore(path) as store:
            await store.save("s", response("x"))
    assert path.read_bytes() == garbage


def test_history_command(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"

    async def fill() -> None:
        async with rxstream.SQLiteStore(path) as store:
            await store.save("chat", response("first answer"))
            await store.save("chat", response("second, cut", complete=False))

    asyncio.run(fill())
    result = subprocess.run(
        [sys.executable, "-m", "rxstream", "history", "chat", "--db", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "first answer" and lines[3] == "second, cut"
    assert "turn 1" in lines[0] and "complete" in lines[0] and "INCOMPLETE" in lines[2]


def test_demo_saves_its_turn(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rxstream", "demo", "--size", "200", "--delay", "0", "--faults", "reorder=3"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    history = subprocess.run(
        [sys.executable, "-m", "rxstream", "history", "demo"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert (tmp_path / "rxstream.db").exists() and history.stdout.splitlines()[1] in result.stdout


class StoreAgainstModel(RuleBasedStateMachine):
    """Any sequence of save/history/delete/sessions agrees with a dict of lists."""

    @initialize()
    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = rxstream.SQLiteStore(":memory:")
        self.model: dict[str, list[tuple[str, bool]]] = {}

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coroutine)

    @rule(session=st.sampled_from(["a", "b", "c"]), text=st.text(max_size=20), complete=st.booleans())
    def save(self, session: str, text: str, complete: bool) -> None:
        turn = self.run(self.store.save(session, response(text, complete)))
        self.model.setdefault(session, []).append((text, complete))
        assert turn.number == len(self.model[session])

    @rule(session=st.sampled_from(["a", "b", "c"]), limit=st.none() | st.integers(0, 4))
    def history(self, session: str, limit: int | None) -> None:
        turns = self.run(self.store.history(session, limit))
        expected = self.model.get(session, [])
        if limit is not None:
            expected = expected[max(0, len(expected) - limit) :] if limit else []
        assert [(t.response.text, t.response.complete) for t in turns] == expected

    @rule(session=st.sampled_from(["a", "b", "c"]))
    def delete(self, session: str) -> None:
        assert self.run(self.store.delete(session)) == len(self.model.pop(session, []))

    @invariant()
    def same_sessions(self) -> None:
        if hasattr(self, "store"):
            assert sorted(self.run(self.store.sessions())) == sorted(s for s, turns in self.model.items() if turns)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.run(self.store.close())
            self.loop.close()


TestStoreAgainstModel = StoreAgainstModel.TestCase
TestStoreAgainstModel.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
