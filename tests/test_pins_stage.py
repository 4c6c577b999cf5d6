"""The Stage contract, pinned where the in-memory suite left it loose (issue 23): "A stage that ends
the stream early (an error, or the final chunk) sets ``stopped``, ignores what still arrives, and
cancels the upstream through ``shared``" (Stage), "one that ends the stream early calls
``self.fail(error)`` or ``self.complete()``, which also stop the source" (README, "Writing your own
operator"), what ``Shared`` holds for the stages of one subscription, and how demand and a source
that fails to start are handled where they meet the stages."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import abc
from reactivex.disposable import Disposable

import rxstream
import rxstream.operators
from rxstream.core._demand import Resume, Source
from rxstream.core._redaction import Secrets

from .support import run


class Recorder(abc.ObserverBase[Any]):
    """Every call a stage makes below it, in order, without RxPY's auto-detaching in between."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_next(self, value: Any) -> None:
        self.calls.append(("next", value))

    def on_error(self, error: Exception) -> None:
        self.calls.append(("error", error))

    def on_completed(self) -> None:
        self.calls.append(("completed", None))


class Passing(rxstream.Stage[Any, Any]):
    def on_next(self, value: Any) -> None:
        if not self.stopped:
            self.emit(value)


def stage_with_source() -> tuple[Passing, Recorder, list[str]]:
    """A stage over a recorder, its shared upstream a disposable that notes when the source is stopped."""
    below = Recorder()
    shared = rxstream.Shared(rxstream.Stats(), None)
    stopped: list[str] = []
    shared.upstream.disposable = Disposable(lambda: stopped.append("source stopped"))
    return Passing(below, shared), below, stopped


@pytest.mark.parametrize("end", ["fail", "complete"])
def test_a_stage_that_ends_the_stream_stops_the_source_and_ends_it_once(end: str) -> None:
    stage, below, stopped = stage_with_source()
    first, second = ValueError("first"), ValueError("second")
    stage.fail(first) if end == "fail" else stage.complete()
    assert stage.stopped and stopped == ["source stopped"]
    stage.fail(second)
    stage.complete()
    stage.on_next("late")
    assert below.calls == [("error", first) if end == "fail" else ("completed", None)]


def test_the_stages_of_a_subscription_share_what_they_were_given() -> None:
    stats, demand, resume, secrets = rxstream.Stats(), rxstream.Demand(), Resume(), Secrets()
    shared = rxstream.Shared(stats, demand, resume, secrets)
    assert shared.stats is stats and shared.demand is demand
    assert shared.resume is resume and shared.secrets is secrets


def test_a_callback_waits_for_demand_and_is_called_once() -> None:
    # Demand.when_ready: "Call callback once, now if ready, else at the next resume"
    called: list[str] = []
    rxstream.Demand().when_ready(lambda: called.append("now"))
    assert called == ["now"]
    paused = rxstream.Demand(ready=False)
    paused.when_ready(lambda: called.append("later"))
    assert called == ["now"]
    paused.resume()
    paused.pause()
    paused.resume()
    assert called == ["now", "later"]


def test_a_source_that_fails_to_start_ends_the_stream_with_its_error() -> None:
    # Source.subscribe_directly: "as RxPY's subscribe does: a source that fails to start ends the stream"
    refused = ValueError("cannot start")

    def start(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        raise refused

    below = Recorder()
    subscription = Source(start).subscribe_directly(below, None)
    assert below.calls == [("error", refused)]
    subscription.dispose()  # a disposable all the same, as the signature says
    assert run(Source(start).pipe(rxstream.operators.reorder())).error is refused
