"""persist disposed while a save is in flight (issue 23, item 11): PersistObserver's promise that once
the subscription is disposed nothing more goes downstream, its pending saves are cancelled, and the
upstream subscription is disposed with it. In memory: a store of the test's own, an asyncio loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from reactivex.subject import Subject

import rxstream
from rxstream import operators as rxo
from rxstream.core._context_store import Turn


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
