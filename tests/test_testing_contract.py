"""check_operator, checked itself: rxstream's own operators pass it, and for each rule of the
contract an operator that breaks exactly that rule is caught, named by that rule, on the smallest input."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

import rxstream
from rxstream import operators as rxo
from rxstream.testing import ContractViolation, check_operator
from rxstream.testing._contract import RULES

Chunks = Observable[rxstream.Chunk]
QUICK = settings(max_examples=60, derandomize=True, database=None)


def shout(chunk: rxstream.Chunk) -> rxstream.Chunk:
    return chunk._replace(data=chunk.data.upper())


def has_text(chunk: rxstream.Chunk) -> bool:
    return bool(chunk.data)


@pytest.mark.parametrize(
    ("make", "slack"),
    [
        (lambda: rxo.reorder(4), 0),
        (rxo.accumulate, 0),
        (lambda: rxo.backpressure_buffer(3), 3),
        (lambda: ops.map(shout), 0),
        (lambda: ops.filter(has_text), 0),
        (lambda: ops.take(2), 0),
    ],
    ids=["reorder", "accumulate", "backpressure_buffer", "map", "filter", "take"],
)
def test_rxstreams_operators_and_rxpys_keep_the_contract(make: Callable[[], Any], slack: int) -> None:
    check_operator(make, slack=slack, settings=QUICK)


class Holding(rxstream.Stage[rxstream.Chunk, rxstream.Chunk]):
    """Holds each chunk back until the next one comes (as a redactor looking ahead would): the base of the broken ones."""

    def __init__(self, downstream: abc.ObserverBase[rxstream.Chunk], shared: rxstream.Shared) -> None:
        super().__init__(downstream, shared)
        self.held: rxstream.Chunk | None = None

    def on_next(self, chunk: rxstream.Chunk) -> None:
        if self.held is not None:
            self.emit(self.held)
        self.held = chunk

    def flush(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self.emit(held)

    def on_completed(self) -> None:
        self.flush()
        self.complete()


class EmitsFromThreads(rxstream.Stage[rxstream.Chunk, rxstream.Chunk]):
    """Hands each chunk to a thread of its own to pass on (to free the source's thread), and waits for them only at the end."""

    def __init__(self, downstream: abc.ObserverBase[rxstream.Chunk], shared: rxstream.Shared) -> None:
        super().__init__(downstream, shared)
        self.threads: list[threading.Thread] = []

    def on_next(self, chunk: rxstream.Chunk) -> None:
        thread = threading.Thread(target=self.emit, args=(chunk,))
        thread.start()
        self.threads.append(thread)

    def on_completed(self) -> None:
        for thread in self.threads:
            thread.join()
        self.complete()

    def on_error(self, error: Exception) -> None:
        for thread in self.threads:
            thread.join()
        self.fail(error)


class FlushesAfterCompleting(Holding):
    def on_completed(self) -> None:
        self.complete()
        self.flush()  # too late: the completion went first


class SwallowsCompletion(Holding):
    def on_completed(self) -> None:
        self.flush()  # and the completion never goes on


class WrapsErrors(Holding):
    def on_error(self, error: Exception) -> None:
        self.fail(RuntimeError(f"the stream failed: {error}"))


def forgets_its_upstream(source: Chunks) -> Chunks:
    """RxPY style, but the subscription it returns is not the upstream's: disposing it stops nothing."""

    def subscribe(observer: abc.ObserverBase[rxstream.Chunk], scheduler: abc.SchedulerBase | None = None) -> Any:
        source.subscribe(observer, scheduler=scheduler)
        return Disposable()

    return Observable(subscribe)


def subscribes_in_a_fresh_context(source: Chunks) -> Chunks:
    """Subscribes upstream where the consumer's demand cannot be seen, as a hop to another scheduler would."""

    def subscribe(observer: abc.ObserverBase[rxstream.Chunk], scheduler: abc.SchedulerBase | None = None) -> Any:
        return contextvars.Context().run(source.subscribe, observer, scheduler=scheduler)

    return Observable(subscribe)


class ShortcutWhenFused(rxstream.Stage[rxstream.Chunk, rxstream.Chunk]):
    """Upper-cases the text; when fused, it takes a shortcut to the next stage, which forgets to."""

    def on_next(self, chunk: rxstream.Chunk) -> None:
        if isinstance(self.downstream, rxstream.Stage):
            self.downstream.on_next(chunk)
        else:
            self.emit(chunk._replace(data=chunk.data.upper()))


BROKEN: dict[str, tuple[Callable[[], Any], str]] = {
    "serial": (
        lambda: rxstream.Operator(EmitsFromThreads),
        "[Chunk(0, ''), Chunk(1, '')], then completes",
    ),
    "after terminal": (lambda: rxstream.Operator(FlushesAfterCompleting), "[Chunk(0, '')], then completes"),
    "one terminal": (lambda: rxstream.Operator(SwallowsCompletion), "[Chunk(0, '')], then completes"),
    "typed errors": (
        lambda: rxstream.Operator(WrapsErrors),
        "[Chunk(0, '')], then fails with InvalidChunkError(",
    ),
    "disposal": (lambda: forgets_its_upstream, "[Chunk(0, '')], consumer disposes after 0 items"),
    "demand": (lambda: subscribes_in_a_fresh_context, "[Chunk(0, '')], then completes"),
    "fused equals piped": (lambda: rxstream.Operator(ShortcutWhenFused), "[Chunk(0, 'a')], then completes"),
}


def test_every_rule_has_an_operator_breaking_it() -> None:
    assert set(BROKEN) == set(RULES)


@pytest.mark.parametrize("rule", list(BROKEN))
def test_an_operator_breaking_one_rule_is_caught_on_the_smallest_input(rule: str) -> None:
    make, smallest = BROKEN[rule]
    with pytest.raises(ContractViolation) as caught:
        check_operator(make, settings=QUICK)
    assert caught.value.rule == rule, str(caught.value)
    assert f"smallest input: {smallest}" in str(caught.value)
    assert RULES[rule] in str(caught.value)


def test_a_buffer_is_caught_unless_its_slack_is_allowed() -> None:
    with pytest.raises(ContractViolation) as caught:
        check_operator(lambda: rxo.backpressure_buffer(3), settings=QUICK)
    assert caught.value.rule == "demand" and "while the consumer was paused" in str(caught.value)
