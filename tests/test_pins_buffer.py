"""backpressure_buffer, pinned where tests/test_backpressure.py left it loose (issue 23): each test
pins a sentence of its docstring, with a consumer below whose demand the test opens and closes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import reactivex

import rxstream
from rxstream import operators as rxo
from rxstream.testing._oracles import collected

from .support import frame, valve


def ten_frames(read: list[int]) -> Iterator[bytes]:
    """Chunks 0 to 9, the last final, noting in ``read`` each one the source reads."""
    for i in range(10):
        read.append(i)
        yield frame(i, str(i), i == 9)


def test_drop_newest_counts_every_discarded_item() -> None:
    # "Drops are counted in Stats.dropped": the queue keeps chunk 0, the four after it are discarded.
    demand = rxstream.Demand(ready=False)
    stream = rxstream.from_frames([frame(i, str(i), i == 4) for i in range(5)]).pipe(
        rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(1, "drop_newest"), rxo.accumulate(), valve(demand)
    )
    outcome = collected(stream.pipe(rxo.finalize()))
    assert outcome.items == [] and outcome.error is None and not outcome.completed
    demand.resume()
    error = outcome.error
    assert isinstance(error, rxstream.IncompleteStreamError) and error.partial is not None
    assert error.partial.text == "0" and error.partial.stats.dropped == 4


def test_an_overflowing_item_that_is_no_chunk_is_named_minus_one() -> None:
    # Raises: BufferOverflowError, "an item arrived when max_pending were waiting: its index (-1 for one that is no Chunk)".
    demand = rxstream.Demand(ready=False)
    items: list[Any] = ["a", "b"]
    outcome = collected(reactivex.from_iterable(items).pipe(rxo.backpressure_buffer(1, "error"), valve(demand)))
    demand.resume()
    assert outcome.items == ["a"] and isinstance(outcome.error, rxstream.BufferOverflowError)
    assert outcome.error.index == -1


def test_block_reads_no_further_while_the_queue_stays_full() -> None:
    # "block": "the source stops reading ... until there is room". A consumer that is ready again
    # only for a moment (it pauses before the buffer could hand it anything) makes no room.
    demand = rxstream.Demand(ready=False)
    demand.when_ready(demand.pause)  # called first when the consumer is resumed
    read: list[int] = []
    stream = rxstream.from_frames(ten_frames(read)).pipe(
        rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(2), valve(demand)
    )
    outcome = collected(stream)
    assert len(read) == 2
    demand.resume()
    assert len(read) == 2 and outcome.items == []
    demand.resume()
    assert len(read) == 10 and [chunk.index for chunk in outcome.items] == list(range(10)) and outcome.completed


def test_the_default_is_5_pending_and_block() -> None:
    # README: rxo.backpressure_buffer(max_pending=5, overflow="block").
    read: list[int] = []
    stream = rxstream.from_frames(ten_frames(read)).pipe(
        rxo.parse(), rxo.backpressure_buffer(), valve(rxstream.Demand(False))
    )
    outcome = collected(stream)
    assert len(read) == 5 and outcome.items == [] and outcome.error is None
