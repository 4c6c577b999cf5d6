"""persist: save the response that ``finalize`` emits, or the partial one it fails with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from ..errors import IncompleteStreamError, StoreError, StoreUnavailableError
from ..model import Response
from ..store import ContextStore, check_session_id


def persist(store: ContextStore, session_id: str) -> Callable[[Observable[Response]], Observable[Response]]:
    """Save each turn under ``session_id`` before passing it on.

    Placed after ``finalize``: the ``Response`` is saved, then emitted; on
    ``IncompleteStreamError`` the partial response is saved (marked incomplete), then the
    error is passed on. Downstream hears nothing until the save has returned, so awaiting
    the pipeline means the turn is durable. A failed save is a ``StoreError``.
    """
    check_session_id(session_id)

    def apply(source: Observable[Response]) -> Observable[Response]:
        def subscribe(observer: abc.ObserverBase[Response], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
            loop = asyncio.get_running_loop()
            saves: set[asyncio.Task[None]] = set()
            responses: list[Response] = []

            def save_then(response: Response, after: Callable[[], None], error: Exception | None) -> None:
                async def save() -> None:
                    try:
                        await store.save(session_id, response)
                    except StoreError as failure:
                        failure.__context__ = error
                        observer.on_error(failure)
                    except Exception as failure:  # a store of the user's own may raise anything
                        wrapped = StoreUnavailableError(repr(store), f"{type(failure).__name__}: {failure}")
                        wrapped.__cause__ = failure
                        observer.on_error(wrapped)
                    else:
                        after()

                task = loop.create_task(save())
                saves.add(task)
                task.add_done_callback(saves.discard)

            def on_completed() -> None:
                if not responses:
                    observer.on_completed()
                    return

                def emit() -> None:
                    for response in responses:
                        observer.on_next(response)
                    observer.on_completed()

                save_then(responses[-1], emit, None)

            def on_error(error: Exception) -> None:
                if isinstance(error, IncompleteStreamError):
                    save_then(error.partial, lambda: observer.on_error(error), error)
                else:
                    observer.on_error(error)

            subscription = source.subscribe(responses.append, on_error, on_completed, scheduler=scheduler)

            def cancel_saves() -> None:
                for task in saves:
                    task.cancel()

            return CompositeDisposable(subscription, Disposable(cancel_saves))

        return Observable(subscribe)

    return apply


async def run_to_response(
    source: Observable[Any], pipeline: Callable[[Any], Any], store: ContextStore | None, session_id: str | None
) -> Response:
    """``source`` through ``pipeline`` to its Response, saved under ``session_id`` when a ``store`` is given."""
    if store is None:
        response: Response = await source.pipe(pipeline)
        return response
    if session_id is None:
        raise ValueError("a store needs a session_id to save the turn under")
    response = await source.pipe(pipeline, persist(store, session_id))
    return response
