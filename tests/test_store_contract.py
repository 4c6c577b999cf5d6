"""What every store keeps and promises (``ContextStore``): one suite, run against SQLiteStore and PostgresStore.

The SQLite runs are in memory (real files); the PostgreSQL runs need the test server
(tests/services.py) and are marked network. Each test gets an empty database: a new file, or
a new schema dropped afterwards.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import rxstream
from rxstream import operators as rxo

from .services import POSTGRES, postgres_schema
from .support import frame, frames_for

_T = TypeVar("_T")
Store = rxstream.SQLiteStore | rxstream.PostgresStore
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
        chunks=3,
        duplicates=1,
        retries=2,
        time_to_first_chunk=0.125,
        duration=0.5,
        usage=rxstream.Usage({"total_tokens": 9}),
    ),
    "think",
    "stop",
)
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
    (
        rxstream.ThinkingBlock("The user wants", "EqQBCgIYAhIM"),
        rxstream.ThinkingBlock(data="EmwKAhgBEgy3"),
        # a Responses reasoning item, kept whole for a stateless continuation
        rxstream.ThinkingBlock(
            "", index=2, item='{"type":"reasoning","id":"rs_2","summary":[],"encrypted_content":"gA"}'
        ),
    ),
)


def response(text: str, complete: bool = True) -> rxstream.Response:
    return rxstream.Response(text, complete, len(text))


@dataclass(frozen=True)
class Backend:
    """One empty database of one kind: ``open()`` makes a new store on it; ``spec`` names it to tests/store_child.py."""

    kind: str
    spec: str
    open: Callable[..., Store]


@contextmanager
def backend_of(kind: str, directory: Path) -> Iterator[Backend]:
    if kind == "sqlite":
        path = directory / "turns.db"
        yield Backend(kind, f"sqlite:{path}", lambda read_only=False: rxstream.SQLiteStore(path, read_only=read_only))
        return
    with postgres_schema() as schema:
        yield Backend(
            kind,
            f"postgres:{schema}:{POSTGRES.url}",
            lambda read_only=False: rxstream.PostgresStore(POSTGRES.url, schema=schema, read_only=read_only),
        )


KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.network)]


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with backend_of(request.param, tmp_path) as made:
        yield made


async def test_round_trip_read_by_a_new_store(backend: Backend) -> None:
    async with backend.open() as store:
        first = await store.save("s1", response("hello"))
        await store.save("s1", response("cut sh", complete=False))
        await store.save("s2", MULTIMODAL)
        await store.save("s3", TOOL_TURN)
    async with backend.open() as reopened:
        turns = await reopened.history("s1")
        assert [(t.number, t.response.text, t.response.complete) for t in turns] == [
            (1, "hello", True),
            (2, "cut sh", False),
        ]
        assert turns[0] == first  # saved_at to the bit
        (turn,) = await reopened.history("s2")
        assert turn.response == MULTIMODAL  # parts, stats, reasoning and finish reason intact
        (turn,) = await reopened.history("s3")
        assert turn.response == TOOL_TURN  # tool calls, refusal and signatures intact
        assert await reopened.sessions() == ["s1", "s2", "s3"]
        assert [t.number for t in await reopened.history("s1", limit=1)] == [2]
        assert await reopened.history("s1", limit=0) == []
        assert await reopened.history("nobody") == []
        assert await reopened.delete("s1") == 2 and await reopened.delete("s1") == 0
        assert await reopened.sessions() == ["s2", "s3"]
        assert [t.number for t in [await reopened.save("s1", response("again"))]] == [
            1
        ]  # a deleted session starts over


async def test_200_concurrent_streams_into_one_store(backend: Backend) -> None:
    async with backend.open() as store:

        async def one(n: int) -> rxstream.Response:
            pieces = [f"<{n}:{i}>" for i in range(5)]
            response: rxstream.Response = await rxstream.from_frames(frames_for(pieces, order=[1, 0, 2, 4, 3])).pipe(
                rxstream.pipeline(), rxo.persist(store, f"session-{n % 50}")
            )
            return response

        responses = await asyncio.gather(*(one(n) for n in range(200)))
        assert all(r.complete for r in responses)
        assert sorted(await store.sessions()) == sorted(f"session-{s}" for s in range(50))
        for session in range(50):
            turns = await store.history(f"session-{session}")
            assert [t.number for t in turns] == [1, 2, 3, 4]
            owners = sorted(int(t.response.text[1 : t.response.text.index(":")]) for t in turns)
            assert owners == [session + 50 * k for k in range(4)]
            for turn in turns:  # no turn mixes two streams
                n = int(turn.response.text[1 : turn.response.text.index(":")])
                assert turn.response.text == "".join(f"<{n}:{i}>" for i in range(5))
                assert turn.response.stats.out_of_order > 0


async def test_persist_saves_the_partial_and_passes_the_error_on(backend: Backend) -> None:
    async with backend.open() as store:
        with pytest.raises(rxstream.FrameError) as caught:
            await rxstream.from_frames([frame(0, "kept "), frame(1, "too"), b"{broken"]).pipe(
                rxstream.pipeline(), rxo.persist(store, "s")
            )
        (turn,) = await store.history("s")
        assert turn.response == caught.value.partial
        assert turn.response.text == "kept too" and not turn.response.complete


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
async def test_bad_session_ids(backend: Backend, session_id: object, problem: str) -> None:
    async with backend.open() as store:
        for call in (store.save(session_id, response("x")), store.history(session_id), store.delete(session_id)):  # type: ignore[arg-type]
            with pytest.raises(rxstream.InvalidSessionError, match=f"session id {problem}, not "):
                await call
        with pytest.raises(rxstream.InvalidSessionError):
            rxo.persist(store, session_id)  # type: ignore[arg-type]


async def test_a_closed_store_says_so(backend: Backend) -> None:
    store = backend.open()
    await store.save("s", response("x"))  # used without async with: it opens on first use
    await store.close()
    await store.close()  # closing twice is harmless
    for call in (store.history("s"), store.save("s", response("y")), store.sessions(), store.delete("s")):
        with pytest.raises(rxstream.StoreClosedError, match="is closed"):
            await call


async def test_a_read_only_store_reads_and_refuses_to_write(backend: Backend) -> None:
    async with backend.open() as store:
        for n in range(3):
            await store.save("s", response(f"turn {n}"))
    async with backend.open(read_only=True) as reader:
        assert [t.response.text for t in await reader.history("s")] == ["turn 0", "turn 1", "turn 2"]
        assert await reader.sessions() == ["s"]
        for call in (reader.save("s", response("x")), reader.delete("s")):
            with pytest.raises(rxstream.StoreUnavailableError, match="it was opened read-only"):
                await call
    async with backend.open() as store:
        assert len(await store.history("s")) == 3


async def test_tool_results_are_turns_of_their_own_numbered_among_the_answers(backend: Backend) -> None:
    results = [rxstream.ToolResult("call_a", "18 °C"), rxstream.ToolResult("call_b", SQL + "\x00", is_error=True)]
    async with backend.open() as store:
        asked = await store.save("agent", TOOL_TURN, request={"model": "m", "messages": []})
        answered = await store.save_tool_results("agent", results)
        assert (answered.number, answered.role, answered.tool_results, answered.request) == (
            2,
            "tool",
            tuple(results),
            None,
        )
        with pytest.raises(ValueError, match="one ToolResult or more"):
            await store.save_tool_results("agent", [])
        with pytest.raises(rxstream.InvalidTurnError, match="surrogate"):
            await store.save_tool_results("agent", [rxstream.ToolResult("call_c", "\udcff")])
        final = await store.save("agent", response("It is 18 °C."))
    async with backend.open(read_only=True) as reader:
        turns = await reader.history("agent")
    assert turns == [asked, answered, final]  # the results byte-identical, is_error kept
    assert [turn.role for turn in turns] == ["assistant", "tool", "assistant"]
    assert turns[1].response == rxstream.Response("", True, 0)


HOSTILE_IDS = [
    "nul\x00inside",
    "\x00",
    'it\'s "quoted" `twice`',
    "'; DROP TABLE turns; --",
    "x" * 1_000_000,  # 1 MB: far past a B-tree entry's size
    "émoji 🦜 and \u202e bidi",
]
SQL = "'); DROP TABLE turns; DROP SCHEMA public CASCADE; --"
HOSTILE_RESPONSE = rxstream.Response(
    f"{SQL}\x00 text",
    False,
    7,
    (rxstream.Part("text", SQL), rxstream.Part("image", "\x00"), rxstream.Part("reasoning", "\\x00" + SQL)),
    rxstream.Stats(chunks=7, usage=rxstream.Usage({SQL: "\x00", "nested": {"q": "'\""}}), response_id=SQL + "\x00"),
    f"{SQL} reasoning\x00",
    SQL,
    (rxstream.ToolCall(0, SQL, SQL, SQL + "\x00"),),
    SQL + "\x00",
    (rxstream.ThinkingBlock(SQL, "\x00"), rxstream.ThinkingBlock("\x00", SQL), rxstream.ThinkingBlock(data=SQL)),
)


async def test_hostile_ids_and_content_come_back_byte_identical(backend: Backend) -> None:
    big = rxstream.Response("é" * 7_500_000, True, 1)  # 15 MB of UTF-8
    async with backend.open() as store:
        for session_id in HOSTILE_IDS:
            await store.save(session_id, HOSTILE_RESPONSE)
            await store.save(session_id, response(session_id[:100]))
        await store.save("big", big)
    async with backend.open() as reopened:
        assert await reopened.sessions() == [*HOSTILE_IDS, "big"]
        for session_id in HOSTILE_IDS:
            first, second = await reopened.history(session_id)
            assert (first.session_id, first.number, first.response) == (session_id, 1, HOSTILE_RESPONSE)
            assert (second.number, second.response.text) == (2, session_id[:100])
        (turn,) = await reopened.history("big")
        assert turn.response == big
        assert await reopened.delete(HOSTILE_IDS[4]) == 2
        assert await reopened.history(HOSTILE_IDS[4]) == [] and len(await reopened.sessions()) == len(HOSTILE_IDS)


@pytest.mark.parametrize(
    "unsavable",
    [
        rxstream.Response("lone \ud800 surrogate", True, 1),
        rxstream.Response("", True, 1, (rxstream.Part("text", "\udfff"),)),
        rxstream.Response("", True, 1, tool_calls=(rxstream.ToolCall(0, "c", "f", '{"a": "\udcff"}'),)),
        rxstream.Response("", True, 1, refusal="\udcff"),
    ],
    ids=["text", "part", "tool call", "refusal"],
)
async def test_a_response_that_is_not_valid_unicode_is_a_typed_error_and_saves_nothing(
    backend: Backend, unsavable: rxstream.Response
) -> None:
    async with backend.open() as store:
        with pytest.raises(rxstream.InvalidTurnError, match="cannot be saved: .*surrogate") as caught:
            await store.save("s", unsavable)
        assert caught.value.response is unsavable and isinstance(caught.value, rxstream.StoreError)
        assert await store.history("s") == [] and await store.sessions() == []
        assert (await store.save("s", response("next"))).number == 1


def child(*arguments: str) -> list[str]:
    return [sys.executable, CHILD, *arguments]


@pytest.mark.network
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_8_processes_of_concurrent_saves_into_5_sessions_number_every_turn_once(
    kind: str, tmp_path: Path
) -> None:
    """Many writers on one database: SQLite's from processes sharing the file, waiting out its lock
    instead of failing with "database is locked"; PostgreSQL's as from many machines: 8 processes
    of 50 concurrent saves each, as issue 26 asks."""
    workers, tasks, sessions = 8, 50, 5
    with backend_of(kind, tmp_path) as backend:
        children = [
            await asyncio.create_subprocess_exec(*child("many", backend.spec, f"w{w}", str(tasks), str(sessions)))
            for w in range(workers)
        ]
        codes = [await asyncio.wait_for(process.wait(), 60) for process in children]
        assert codes == [0] * workers
        async with backend.open() as store:
            assert sorted(await store.sessions()) == [f"session-{s}" for s in range(sessions)]
            saved: list[str] = []
            for s in range(sessions):
                turns = await store.history(f"session-{s}")
                assert [t.number for t in turns] == list(range(1, len(turns) + 1))  # contiguous from 1
                saved.extend(t.response.text for t in turns if t.session_id == f"session-{s}")
                assert all(int(t.response.text.split(":")[1]) % sessions == s for t in turns)
        assert sorted(saved) == sorted(f"w{w}:{i}" for w in range(workers) for i in range(tasks))  # each exactly once


@pytest.mark.network
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_writer_killed_while_saving_leaves_no_half_turn_and_the_others_go_on(kind: str, tmp_path: Path) -> None:
    with backend_of(kind, tmp_path) as backend:
        killed, survivor = [
            await asyncio.create_subprocess_exec(*child("save", backend.spec, tag), stdout=subprocess.PIPE)
            for tag in ("killed", "survivor")
        ]
        assert killed.stdout is not None and survivor.stdout is not None
        acknowledged: list[int] = []
        try:
            while len(acknowledged) < 30:  # the child prints a turn's number once its save has returned
                line = await asyncio.wait_for(killed.stdout.readline(), 30)
                assert line, "the child stopped saving"
                acknowledged.append(int(line))
        finally:
            killed.send_signal(signal.SIGKILL)
            await killed.wait()
        assert killed.returncode == -signal.SIGKILL
        after_kill: list[int] = []
        while len(after_kill) < 10:  # the survivor goes on saving past the killed one's last turn
            line = await asyncio.wait_for(survivor.stdout.readline(), 30)
            assert line, "the survivor stopped saving"
            if int(line) > max(acknowledged):
                after_kill.append(int(line))
        survivor.send_signal(signal.SIGKILL)
        await survivor.wait()
        async with backend.open() as store:
            mine = await store.save("crash", response("after both"))
            turns = await store.history("crash")
    assert [t.number for t in turns] == list(range(1, len(turns) + 1)) and turns[-1] == mine
    by_writer: dict[str, list[int]] = {"killed": [], "survivor": []}
    for turn in turns[:-1]:  # each whole: the same words fifty times
        tag, count = turn.response.text.split()[:2]
        assert turn.response.text == f"{tag} {count} " * 50
        by_writer[tag].append(turn.number)
    assert set(acknowledged) <= set(by_writer["killed"])  # every acknowledged turn is there
    assert set(after_kill) <= set(by_writer["survivor"])


SESSIONS = st.sampled_from(["a", "b", "c"])


class StoreAgainstModel(RuleBasedStateMachine):
    """Any sequence of save/history/delete/sessions, across reopenings, agrees with a dict of lists."""

    kind = "sqlite"

    @initialize()
    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.directory = tempfile.TemporaryDirectory()
        self.database = backend_of(self.kind, Path(self.directory.name))
        self.backend = self.database.__enter__()
        self.store = self.backend.open()
        self.model: dict[str, list[tuple[str, bool]]] = {}

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return self.loop.run_until_complete(coroutine)

    @rule(session=SESSIONS, text=st.text(max_size=20), complete=st.booleans())
    def save(self, session: str, text: str, complete: bool) -> None:
        try:
            turn = self.run(self.store.save(session, response(text, complete)))
        except rxstream.InvalidTurnError:  # a lone surrogate: nothing saved
            assert any(0xD800 <= ord(character) <= 0xDFFF for character in text)
            return
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
        self.store = self.backend.open()

    @invariant()
    def same_sessions(self) -> None:
        if hasattr(self, "store"):
            assert self.run(self.store.sessions()) == list(self.model)  # in the order of their first turn

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.run(self.store.close())
            self.loop.close()
            self.database.__exit__(None, None, None)
            self.directory.cleanup()


class PostgresStoreAgainstModel(StoreAgainstModel):
    kind = "postgres"


TestSQLiteStoreAgainstModel = StoreAgainstModel.TestCase
TestSQLiteStoreAgainstModel.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
TestPostgresStoreAgainstModel = pytest.mark.network(PostgresStoreAgainstModel.TestCase)
TestPostgresStoreAgainstModel.settings = settings(
    max_examples=6, stateful_step_count=20, deadline=None
)  # a schema an example: fewer, to stay within seconds
