"""Where frames come from and where results go, when they are not a socket: iterables and async iterables.

Each source calls its observer directly (no Subject in between) and honours the demand
published by the stages below it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Self, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.internal.exceptions import SequenceContainsNoElementsError
from reactivex.scheduler import CurrentThreadScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

from ..core._context_store import ContextStore
from ..core._demand import Demand, Source, batch_receiver, current_demand, subscribe_upstream
from ..core._values import Response, Stats
from ..operators._persist import persist

_T = TypeVar("_T")


async def until_ready(demand: Demand) -> None:
    """Return once ``demand`` is ready: how an asynchronous source waits for the stage below."""
    while not demand.ready:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(waiter: asyncio.Future[None] = waiter) -> None:
            if not waiter.done():
                waiter.set_result(None)

        demand.when_ready(wake)
        await waiter


def from_frames(frames: Iterable[_T]) -> Observable[_T]:
    """An Observable of the items of ``frames`` (raw frames, str or bytes, for ``parse``).

    Emission starts on the subscribing scheduler (the current thread's trampoline by
    default), pauses while the demand below is not ready and stops when disposed.
    """

    def subscribe(observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        demand = current_demand()
        scheduler_ = scheduler or CurrentThreadScheduler.singleton()
        iterator = iter(frames)
        disposed = False

        def pump(*_: Any) -> None:
            if disposed:
                return
            if demand is not None and not demand.ready:
                demand.when_ready(pump_again)
                return
            take = batch_receiver(observer)
            try:
                while take(iterator):
                    if disposed:
                        return
                    if demand is not None and not demand.ready:
                        demand.when_ready(pump_again)
                        return
            except Exception as error:  # the iterable's own failure ends the stream
                observer.on_error(error)
                return
            observer.on_completed()

        def pump_again() -> None:
            if not disposed:
                scheduler_.schedule(pump)

        def dispose() -> None:
            nonlocal disposed
            disposed = True

        scheduler_.schedule(pump)
        return Disposable(dispose)

    return Source(subscribe)


def _loop_of(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop:
    if isinstance(scheduler, AsyncIOScheduler):
        return scheduler._loop  # noqa: SLF001 - RxPY keeps the loop private but it is the one to run on
    return asyncio.get_running_loop()


def from_async_iterable(items: AsyncIterable[_T]) -> Observable[_T]:
    """An Observable of the items of an async iterable, read by a task on the running loop.

    The task waits for demand before reading each item, so a full buffer below stops it
    reading; disposing cancels the task and closes the iterator.
    """

    def subscribe(observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        demand = current_demand()
        disposed = False

        async def pump() -> None:
            iterator = aiter(items)
            try:
                while not disposed:
                    if demand is not None and not demand.ready:
                        await until_ready(demand)
                    try:
                        item = await anext(iterator)
                    except StopAsyncIteration:
                        break
                    observer.on_next(item)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                observer.on_error(error)
                return
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            observer.on_completed()

        def dispose() -> None:
            # Cancelling is not enough when the item that led to disposal is being pushed
            # from this very task: the flag stops it at the next item.
            nonlocal disposed
            disposed = True
            task.cancel()

        task = _loop_of(scheduler).create_task(pump())
        return Disposable(dispose)

    return Source(subscribe)


class _Inbox(abc.ObserverBase[_T]):
    """What an ``AsyncStream`` is pushed: the items not yet taken, how the stream ended, and the
    demand, paused after each item. It holds no reference to the stream, so the source (a network
    source's task, which the event loop keeps) never keeps an abandoned iterator alive."""

    __slots__ = ("demand", "items", "outcome", "waiter")

    def __init__(self) -> None:
        self.demand = Demand(ready=False)
        self.items: deque[_T] = deque()
        self.outcome: tuple[Exception | None] | None = None
        self.waiter: asyncio.Future[None] | None = None

    def on_next(self, item: _T) -> None:
        self.items.append(item)
        self.demand.pause()
        self.wake()

    def on_error(self, error: Exception) -> None:
        self.outcome = (error,)
        self.wake()

    def on_completed(self) -> None:
        self.outcome = (None,)
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class AsyncStream(AsyncIterator[_T]):
    """An Observable taken one item per ``async for`` step; ``async with`` ends its subscription
    (and so closes the connection) when the block is left, however early.

    Each step is a request for one item: between steps the demand is paused, so a
    ``backpressure_buffer`` above (or the source itself) holds back while the loop body is busy.
    ``stats`` is the stream's ``Stats``, filled in by the stages as they run. A stream dropped
    without ``aclose`` ends its subscription when it is collected: its task, socket and server
    connection go with it.
    """

    __slots__ = ("_source", "_inbox", "_stats", "_subscription", "__weakref__")

    def __init__(self, source: Observable[_T]) -> None:
        self._source = source
        self._inbox: _Inbox[_T] = _Inbox()
        self._stats = Stats()
        self._subscription: abc.DisposableBase | None = None

    @property
    def stats(self) -> Stats:
        """The stream's counters and timings so far."""
        return self._stats

    async def __anext__(self) -> _T:
        inbox = self._inbox
        if self._subscription is None:
            self._subscription = subscribe_upstream(self._source, inbox, None, stats=self._stats, demand=inbox.demand)
            release = weakref.finalize(self, self._subscription.dispose)
            release.atexit = False  # at exit the loop is gone: nothing is left to release
        while not inbox.items:
            if inbox.outcome is not None:
                error = inbox.outcome[0]
                if error is not None:
                    raise error
                raise StopAsyncIteration
            inbox.waiter = asyncio.get_running_loop().create_future()
            inbox.demand.resume()  # a synchronous source may deliver inside this call
            if not inbox.items and inbox.outcome is None:
                await inbox.waiter
        return inbox.items.popleft()

    async def aclose(self) -> None:
        """End the subscription: the source stops and its connection closes; the next step ends the loop."""
        if self._subscription is not None:
            self._subscription.dispose()
        self._inbox.outcome = self._inbox.outcome or (None,)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def to_async_iterable(source: Observable[_T]) -> AsyncStream[_T]:
    """Iterate an Observable with ``async for``, taking one item at a time (see ``AsyncStream``).

    Leave the loop early inside ``async with`` (or call ``aclose``) to end the subscription.
    """
    return AsyncStream(source)


async def last_of(observable: Observable[_T]) -> _T:
    """The last item ``observable`` emits, as ``await observable`` gives it, but resolved
    straight from the observer: RxPY's ``await`` goes through a trampoline scheduler, a cost
    every stream pays once, which counts when a process runs a thousand of them."""
    future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
    last: list[_T] = []

    def on_next(item: _T) -> None:
        last[:] = (item,)

    def on_error(error: Exception) -> None:
        if not future.done():
            future.set_exception(error)

    def on_completed() -> None:
        if future.done():
            return
        if last:
            future.set_result(last[0])
        else:
            future.set_exception(SequenceContainsNoElementsError())

    subscription = observable.subscribe(on_next, on_error, on_completed)
    try:
        return await future
    finally:
        subscription.dispose()


async def run_to_response(
    source: Observable[Any],
    pipeline: Callable[[Any], Any],
    store: ContextStore | None,
    session_id: str | None,
    request: Mapping[str, Any] | None = None,
) -> Response:
    """``source`` through ``pipeline`` to its Response, saved under ``session_id`` (with the
    ``request`` body that asked for it) when a ``store`` is given."""
    if store is None:
        return await last_of(source.pipe(pipeline))
    if session_id is None:
        raise ValueError("a store needs a session_id to save the turn under")
    return await last_of(source.pipe(pipeline, persist(store, session_id, request=request)))
