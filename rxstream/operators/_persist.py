"""persist: save the response that ``finalize`` emits, or the partial one it fails with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from ..core._context_store import ContextStore, check_session_id
from ..core._errors import StreamError, TurnNotSavedError
from ..core._values import Response

Step = Callable[[], Awaitable[None]]


class PersistObserver(abc.ObserverBase[Response]):
    """Passes each event on only once the saves before it have returned.

    Rx pushes synchronously and a save is a coroutine, so every event becomes a task on the
    event loop that first awaits the task of the event before it: a ``Response`` is saved,
    then emitted; an error's ``partial`` response (finalize's) is saved, then the error
    passed on; completion and other errors wait for the saves before them. Downstream thus
    hears of a turn only when it is durable, and in the order upstream sent.
    """

    def __init__(
        self,
        downstream: abc.ObserverBase[Response],
        store: ContextStore,
        session_id: str,
        loop: asyncio.AbstractEventLoop,
        request: Mapping[str, Any] | None,
    ) -> None:
        self.downstream = downstream
        self.store = store
        self.session_id = session_id
        # passed only when known, so that a store written before save took request= still works
        self.options: dict[str, Any] = {} if request is None else {"request": request}
        self.loop = loop
        self.last: asyncio.Task[None] | None = None
        self.pending: set[asyncio.Task[None]] = set()
        self.stopped = False  # a save failed, or the subscription was disposed: nothing more goes downstream

    def on_next(self, response: Response) -> None:
        async def save_then_emit() -> None:
            if await self.saved(response):
                self.downstream.on_next(response)

        self.then(save_then_emit)

    def on_error(self, error: Exception) -> None:
        async def save_partial_then_fail() -> None:
            partial = error.partial if isinstance(error, StreamError) else None
            if partial is None or await self.saved(partial):
                self.downstream.on_error(error)

        self.then(save_partial_then_fail)

    def on_completed(self) -> None:
        async def complete() -> None:
            self.downstream.on_completed()

        self.then(complete)

    def dispose(self) -> None:
        self.stopped = True
        for task in self.pending:
            task.cancel()

    def then(self, step: Step) -> None:
        if running_loop() is self.loop:
            self.chain(step)
        else:  # upstream emits on another thread (observe_on): a task may only be made on its loop's
            self.loop.call_soon_threadsafe(self.chain, step)

    def chain(self, step: Step) -> None:
        previous = self.last

        async def after_previous() -> None:
            if previous is not None:
                await previous
            if not self.stopped:
                await step()

        self.last = task = self.loop.create_task(after_previous())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def saved(self, response: Response) -> bool:
        """Save ``response``; on failure end the stream with ``TurnNotSavedError`` holding it."""
        try:
            await self.store.save(self.session_id, response, **self.options)
        except Exception as failure:  # a store of the user's own may raise anything
            self.stopped = True
            error = TurnNotSavedError(self.session_id, response, f"{type(failure).__name__}: {failure}")
            error.__cause__ = failure
            self.downstream.on_error(error)
            return False
        return True


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def persist(
    store: ContextStore, session_id: str, *, request: Mapping[str, Any] | None = None
) -> Callable[[Observable[Response]], Observable[Response]]:
    """Save each turn under ``session_id`` before passing it on.

    .. marble::
        :alt: persist

        -R|
        [ persist(store, session_id) ]
        ----(R|)

        -#
        [ persist(store, session_id) ]
        ----#

    ``R`` is the ``Response`` from ``finalize``: it is saved, and emitted when the save has
    returned (three ticks later here); the completion waits behind it. In the second
    diagram the error carries a ``partial`` response (every ``StreamError`` from ``finalize``
    does): it is saved (marked incomplete), then the error is passed on. Downstream hears
    nothing until the save has returned, so awaiting the pipeline means the turn is durable.
    Other errors are passed on, in order, once the saves before them have returned.

    Subscribe inside a running asyncio loop (awaiting the pipeline does): the saves run on
    it.

    Args:
        store: A ``ContextStore``, such as ``SQLiteStore``.
        session_id: The conversation the turns belong to: a non-empty string of valid
            Unicode.
        request: The body of the request the turns answer, saved with each (``Turn.request``),
            from which the next request is built (``chat_messages`` and the like).

    Returns:
        An operator that takes an observable of ``Response``s (``finalize``'s) and returns
        an observable of the same responses, each once it is saved.

    Raises:
        InvalidSessionError: (at the call) ``session_id`` is empty, not a string, or not
            valid Unicode.
        RuntimeError: (at subscription) no asyncio event loop is running.
        TurnNotSavedError: (to the observer, ending the stream) a save failed; it holds the
            unsaved response on ``.response``, and the store's error is the ``__cause__``.
    """
    check_session_id(session_id)

    def apply(source: Observable[Response]) -> Observable[Response]:
        def subscribe(
            observer: abc.ObserverBase[Response], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            loop = running_loop()
            if loop is None:
                raise RuntimeError(
                    "persist saves on an asyncio event loop: subscribe inside one, e.g. by awaiting the pipeline"
                )
            persisting = PersistObserver(observer, store, session_id, loop, request)
            subscription = source.subscribe(persisting, scheduler=scheduler)
            return CompositeDisposable(subscription, Disposable(persisting.dispose))

        return Observable(subscribe)

    return apply
