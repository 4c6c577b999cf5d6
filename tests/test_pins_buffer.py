"""backpressure_buffer, pinned where tests/test_backpressure.py left it loose (issue 23): each test
pins a sentence of its docstring, with a consumer below whose demand the test opens and closes."""

from __future__ import annotations

from typing import Any

import reactivex
from reactivex import Observable

import rxstream
from rxstream import operators as rxo

from .support import Outcome, frame, valve


def subscribed(observable: Observable[Any]) -> Outcome:
    """Subscribe and collect, as far as the consumer's demand lets the stream go for now."""
    outcome = Outcome()

    def on_error(error: Exception) -> None:
        outcome.error = error

    def on_completed() -> None:
        outcome.completed = True

    observable.subscribe(outcome.items.append, on_error, on_completed)
    return outcome


def test_drop_newest_counts_every_discarded_item() -> None:
    # "Drops are counted in Stats.dropped": the queue keeps chunk 0, the four after it are discarded.
    demand = rxstream.Demand(ready=False)
    stream = rxstream.from_frames([frame(i, str(i), i == 4) for i in range(5)]).pipe(
        rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(1, "drop_newest"), rxo.accumulate(), valve(demand)
    )
    outcome = subscribed(stream.pipe(rxo.finalize()))
    assert outcome.items == [] and outcome.error is None and not outcome.completed
    demand.resume()
    error = outcome.error
    assert isinstance(error, rxstream.IncompleteStreamError) and error.partial is not None
    assert error.partial.text == "0" and error.partial.stats.dropped == 4


def test_an_overflowing_item_that_is_no_chunk_is_named_minus_one() -> None:
    # Raises: BufferOverflowError, "its index the item's, -1 for an item that is not a Chunk".
    demand = rxstream.Demand(ready=False)
    items: list[Any] = ["a", "b"]
    outcome = subscribed(reactivex.from_iterable(items).pipe(rxo.backpressure_buffer(1, "error"), valve(demand)))
    demand.resume()
    assert outcome.items == ["a"] and isinstance(outcome.error, rxstream.BufferOverflowError)
    assert outcome.error.index == -1
