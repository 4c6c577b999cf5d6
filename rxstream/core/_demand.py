"""How a stage learns about the stages below it: demand and stats flow upstream at subscribe time.

Subscription in Rx runs from the consumer up to the source, one ``subscribe`` call inside
another. While an rxstream stage subscribes to its upstream it publishes, in context
variables, the ``Demand`` the upstream must honour and the ``Stats`` every stage writes to
(and the ``Resume`` and ``Secrets`` a network source shares with them).
Plain RxPY operators in between subscribe synchronously and so pass both through untouched
(the idea of Reactor's subscriber ``Context``). An operator that defers subscription to
another scheduler, such as ``subscribe_on``, cuts the chain: the source above it then sees
no demand and produces at full speed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._redaction import Secrets
from ._values import Stats

_T = TypeVar("_T")

_demand: ContextVar[Demand | None] = ContextVar("rxstream_demand", default=None)
_stats: ContextVar[Stats | None] = ContextVar("rxstream_stats", default=None)
_resume: ContextVar[Resume | None] = ContextVar("rxstream_resume", default=None)
_secrets: ContextVar[Secrets | None] = ContextVar("rxstream_secrets", default=None)


class Demand:
    """Whether the stage below will take more items now: Reactive Streams' ``request(n)``, level-triggered.

    A source checks ``ready`` before producing each item and, when it is false, stops
    reading until ``when_ready`` calls it back. Level rather than credit, because the
    stages between a source and a buffer are not one-to-one: reorder holds chunks back and
    drops duplicates, and credit spent on those would never be returned.
    """

    __slots__ = ("ready", "_callbacks")

    def __init__(self, ready: bool = True) -> None:
        self.ready = ready
        self._callbacks: list[Callable[[], Any]] = []

    def pause(self) -> None:
        self.ready = False

    def resume(self) -> None:
        if self.ready:
            return
        self.ready = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def when_ready(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once, now if ready, else at the next ``resume``."""
        if self.ready:
            callback()
        else:
            self._callbacks.append(callback)


class Resume:
    """How reorder and a source that can request its stream again recover exactly once.

    Reorder sets ``position``: the next index it needs, so a reconnecting source can ask
    the server to resume from there (replayed chunks below it are dropped as duplicates).
    A source that can re-request sets ``restart``: reorder calls it with that index on a
    gap it cannot close, instead of failing; it returns False once retries are exhausted.
    A parser whose items can make a whole answer without a final marker sets ``finished``
    (parse_sse: a finish reason came): whether an end of the input now would complete the
    stream, so that a source whose body ends then completes instead of requesting more.
    """

    __slots__ = ("position", "restart", "finished")

    def __init__(self) -> None:
        self.position: Callable[[], int] | None = None
        self.restart: Callable[[int], bool] | None = None
        self.finished: Callable[[], bool] | None = None


def current_resume() -> Resume:
    """The recovery hooks of the pipeline being subscribed now; a fresh one outside a pipeline."""
    return _resume.get() or Resume()


def current_secrets() -> Secrets:
    """The secrets of the pipeline being subscribed now: its source adds the tokens it sends, and
    its stages keep them out of the frames they quote in errors. A fresh set outside a pipeline."""
    return _secrets.get() or Secrets()


def current_demand() -> Demand | None:
    """The demand of the stage below, for a source or stage being subscribed now."""
    return _demand.get()


def current_stats() -> Stats:
    """The stats of the pipeline being subscribed now; a fresh one outside a pipeline."""
    return _stats.get() or Stats()


class BatchObserver(abc.ObserverBase[_T]):
    """An observer that can also be handed items a batch at a time, looping over them itself.

    A source that has several items at hand (``from_frames``' iterable, the frames one read
    of a socket parsed) hands them to ``on_next_batch`` instead of calling ``on_next`` once
    each: ``rxstream.pipeline``'s fast path is one, and spares a call per plain frame.
    """

    @abstractmethod
    def on_next_batch(self, items: Iterator[_T]) -> bool:
        """Take items from ``items``; answer True when the source should see to demand and
        disposal before giving more, False once ``items`` is exhausted."""


def batch_receiver(observer: abc.ObserverBase[_T]) -> Callable[[Iterator[_T]], bool]:
    """How a source hands ``observer`` its items: ``on_next_batch`` for a ``BatchObserver``,
    else a function with the same contract that calls ``on_next`` for one item at a time."""
    if isinstance(observer, BatchObserver):
        return observer.on_next_batch
    on_next = observer.on_next

    def take_one(items: Iterator[_T]) -> bool:
        for item in items:
            on_next(item)
            return True
        return False

    return take_one


class Source(Observable[_T]):
    """An rxstream source: it calls its observer only until the first terminal event and stops
    when disposed, by itself. ``subscribe_upstream`` therefore subscribes a stage to it
    directly, without the ``AutoDetachObserver`` RxPY's ``subscribe`` puts in between to
    enforce exactly that, and which costs a call per item."""

    def subscribe_directly(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None
    ) -> abc.DisposableBase:
        try:
            return self._subscribe_core(observer, scheduler)
        except Exception as error:  # as RxPY's subscribe does: a source that fails to start ends the stream
            observer.on_error(error)
            return Disposable()


def subscribe_upstream(
    source: Observable[_T],
    observer: abc.ObserverBase[_T],
    scheduler: abc.SchedulerBase | None,
    *,
    stats: Stats,
    demand: Demand | None,
    resume: Resume | None = None,
    secrets: Secrets | None = None,
) -> abc.DisposableBase:
    """Subscribe ``observer`` to ``source`` with ``stats``, ``demand``, ``resume`` and ``secrets`` visible above it."""
    demand_token = _demand.set(demand)
    stats_token = _stats.set(stats)
    resume_token = _resume.set(resume)
    secrets_token = _secrets.set(secrets)
    try:
        if isinstance(source, Source):
            return source.subscribe_directly(observer, scheduler)
        return source.subscribe(observer, scheduler=scheduler)
    finally:
        _secrets.reset(secrets_token)
        _resume.reset(resume_token)
        _stats.reset(stats_token)
        _demand.reset(demand_token)
