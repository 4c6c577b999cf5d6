"""The synchronous core every operator is made of, and the adapter that makes it an Rx operator.

A ``Stage`` is an observer that transforms what it is pushed and pushes the result to the
observer below it. ``operator`` wraps one stage as a plain ``reactivex`` operator;
``pipeline`` chains several stages inside one subscription, calling each other directly,
so the composed pipeline pays the Rx observer machinery once instead of once per stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from ._demand import (
    Demand,
    Resume,
    current_demand,
    current_resume,
    current_secrets,
    current_stats,
    subscribe_upstream,
)
from ._redaction import Secrets
from ._values import Stats

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class Shared:
    """What the stages of one subscription share: stats, the demand from below, recovery, the
    secrets the source sent (to keep out of quoted frames), and a way to stop the source."""

    __slots__ = ("stats", "demand", "resume", "secrets", "upstream")

    def __init__(
        self, stats: Stats, demand: Demand | None, resume: Resume | None = None, secrets: Secrets | None = None
    ) -> None:
        self.stats = stats
        self.demand = demand
        self.resume = Resume() if resume is None else resume
        self.secrets = Secrets() if secrets is None else secrets
        self.upstream = SingleAssignmentDisposable()

    def cancel_upstream(self) -> None:
        self.upstream.dispose()
        # The source is stopped and asks for no position again. Letting go of the stages' callbacks
        # breaks the cycle stage → shared → resume → callback → stage, so that the stages go
        # when the stream does, by reference counting, instead of waiting for a full collection.
        self.resume.position = None
        self.resume.finished = None


class Stage(abc.ObserverBase[_In], Generic[_In, _Out]):
    """One step of a pipeline. Subclasses override ``on_next`` and, to hold items back, the others.

    A stage that ends the stream early (an error, or the final chunk) sets ``stopped``,
    ignores what still arrives, and cancels the upstream through ``shared``.
    """

    def __init__(self, downstream: abc.ObserverBase[_Out], shared: Shared) -> None:
        self.downstream = downstream
        self.emit = downstream.on_next
        self.shared = shared
        self.stopped = False

    @property
    def upstream_demand(self) -> Demand | None:
        """The demand the stages above must honour; a buffer substitutes its own."""
        return self.shared.demand

    def on_error(self, error: Exception) -> None:
        self.fail(error)

    def on_completed(self) -> None:
        self.complete()

    def fail(self, error: Exception) -> None:
        """End the stream with ``error`` and stop the source."""
        if not self.stopped:
            self.stopped = True
            self.downstream.on_error(error)
        self.shared.cancel_upstream()

    def complete(self) -> None:
        """End the stream successfully, if upstream has not yet then before it, and stop the source."""
        if not self.stopped:
            self.stopped = True
            self.downstream.on_completed()
        self.shared.cancel_upstream()


StageFactory = Callable[[abc.ObserverBase[Any], Shared], Stage[Any, Any]]


class Operator(Generic[_In, _Out]):
    """A ``reactivex`` operator made of stages: call it on an Observable, or ``fuse`` it with others.

    Fused operators run their stages inside one subscription, calling each other directly,
    which is what ``rxstream.pipeline`` does with the five built-in ones.
    """

    __slots__ = ("factories",)

    def __init__(self, *factories: StageFactory) -> None:
        self.factories = factories

    def __call__(self, source: Observable[_In]) -> Observable[_Out]:
        factories = self.factories

        def subscribe(
            observer: abc.ObserverBase[_Out], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            shared = Shared(current_stats(), current_demand(), current_resume(), current_secrets())
            head: abc.ObserverBase[Any] = observer
            stages: list[Stage[Any, Any]] = []
            for factory in reversed(factories):
                head = stage = factory(head, shared)
                stages.append(stage)
                shared.demand = stage.upstream_demand
            head = self.head(stages[::-1])
            shared.upstream.disposable = subscribe_upstream(
                source,
                head,
                scheduler,
                stats=shared.stats,
                demand=shared.demand,
                resume=shared.resume,
                secrets=shared.secrets,
            )
            return shared.upstream

        return Observable(subscribe)

    def head(self, stages: list[Stage[Any, Any]]) -> abc.ObserverBase[Any]:
        """The observer to subscribe to the source, given each subscription's stages in order:
        the first stage, unless a fused operator puts a faster way in front of it."""
        return stages[0]


def fuse(*operators: Operator[Any, Any]) -> Operator[Any, Any]:
    """One operator running all of ``operators``' stages in order in one subscription."""
    return Operator(*(factory for operator in operators for factory in operator.factories))
