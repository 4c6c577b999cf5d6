"""persist: each turn saved before it is passed on, in order, on the loop; a failed save typed, holding the response."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler import NewThreadScheduler

import rxstream
from rxstream import operators as rxo

from .support import frames_for
from .test_store_contract import response


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


def test_persist_outside_an_event_loop_says_so() -> None:
    with pytest.raises(RuntimeError, match="persist saves on an asyncio event loop"):
        rxstream.from_frames(frames_for(["a"])).pipe(rxo.persist(rxstream.SQLiteStore(":memory:"), "s")).subscribe()  # type: ignore[arg-type]  # frames, not a Response: it fails before it could matter
