"""persist's promises (issue 23, item 11 and the mutants the suite left alive): once the subscription
is disposed nothing more goes downstream, its pending saves are cancelled and the upstream
subscription is disposed with it; a failed save ends the stream; the request is saved with each
turn. In memory: a store of the test's own (or a SQLite file), an asyncio loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

import rxstream
from rxstream import operators as rxo
from rxstream.core._context_store import Turn

from .support import frame


class SlowStore:
    """Saves only when ``release`` is set; records what it was asked and whether it was cancelled."""

    def __init__(self) -> None:
        self.started: list[rxstream.Response] = []
        self.cancelled = 0
        self.saved = 0
        self.release = asyncio.Event()

    async def save(
        self, session_id: str, response: rxstream.Response, *, request: Mapping[str, Any] | None = None
    ) -> Turn:
        self.started.append(response)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.saved += 1
        raise AssertionError("a save of a disposed stream ran to its end")

    async def save_tool_results(self, session_id: str, results: Sequence[rxstream.ToolResult]) -> Turn:
        raise AssertionError("persist saves no tool results")

    async def history(self, session_id: str, limit: int | None = None) -> list[Turn]:
        return []

    async def sessions(self) -> list[str]:
        return []

    async def delete(self, session_id: str) -> int:
        return 0


class FailingStore(SlowStore):
    """Every save fails, as a full disk would."""

    async def save(
        self, session_id: str, response: rxstream.Response, *, request: Mapping[str, Any] | None = None
    ) -> Turn:
        self.started.append(response)
        raise OSError("disk full")


async def test_disposing_mid_save_cancels_it_and_stops_upstream() -> None:
    store = SlowStore()
    upstream: Subject[rxstream.Response] = Subject()
    heard: list[object] = []
    subscription = upstream.pipe(rxo.persist(store, "session-1")).subscribe(
        heard.append, heard.append, lambda: heard.append("done")
    )
    upstream.on_next(rxstream.Response("hello", True, 1))
    upstream.on_completed()
    for _ in range(5):  # the save starts and waits on the store
        await asyncio.sleep(0)
    assert len(store.started) == 1 and heard == []
    subscription.dispose()
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.cancelled == 1, "the save in flight is cancelled"
    store.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert heard == [] and store.saved == 0, "nothing goes downstream after disposal, not even the completion"


async def test_disposing_before_the_save_stops_upstream() -> None:
    store = SlowStore()
    upstream: Subject[rxstream.Response] = Subject()
    heard: list[object] = []
    subscription = upstream.pipe(rxo.persist(store, "session-1")).subscribe(heard.append, heard.append)
    subscription.dispose()
    assert not upstream.observers, "the upstream subscription is disposed with persist's"
    upstream.on_next(rxstream.Response("late", True, 1))
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.started == [] and heard == []


async def test_an_event_on_its_way_from_another_thread_is_dropped_once_disposed() -> None:
    # persist brings events from another thread to its loop; one that a thread pushed just before
    # the disposal arrives after it, and "nothing more goes downstream", nor to the store.
    store = SlowStore()
    heard: list[object] = []
    pushed: list[abc.ObserverBase[rxstream.Response]] = []

    def subscribe(observer: abc.ObserverBase[rxstream.Response], scheduler: Any = None) -> Disposable:
        pushed.append(observer)
        return Disposable()

    subscription = Observable(subscribe).pipe(rxo.persist(store, "session-1")).subscribe(heard.append, heard.append)
    thread = threading.Thread(target=pushed[0].on_next, args=(rxstream.Response("late", True, 1),))
    thread.start()
    thread.join()
    subscription.dispose()
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.started == [] and heard == []


async def test_a_failed_save_ends_the_stream_and_nothing_after_it_is_saved() -> None:
    # TurnNotSavedError: "(to the observer, ending the stream) a save failed".
    store = FailingStore()
    heard: list[object] = []
    upstream: Subject[rxstream.Response] = Subject()
    upstream.pipe(rxo.persist(store, "session-1")).subscribe(heard.append, heard.append, lambda: heard.append("done"))
    upstream.on_next(rxstream.Response("first", True, 1))
    upstream.on_next(rxstream.Response("second", True, 1))
    upstream.on_completed()
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(store.started) == 1, "the second turn is not saved after the first failed"
    (error,) = heard
    assert isinstance(error, rxstream.TurnNotSavedError) and error.response.text == "first"
    assert isinstance(error.__cause__, OSError)


async def test_the_request_is_saved_with_the_turn(tmp_path: Path) -> None:
    # persist's request: "The body of the request the turns answer, saved with each (Turn.request)".
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with rxstream.SQLiteStore(tmp_path / "turns.db") as store:
        response = await rxstream.from_frames([frame(0, "hello", True)]).pipe(
            rxstream.pipeline(), rxo.persist(store, "session-1", request=body)
        )
        (turn,) = await store.history("session-1")
    assert turn.response == response and turn.request == body
