"""Demand flows from a slow consumer back to the source; each overflow strategy keeps its promise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import reactivex
from reactivex import Observer

import rxstream
from rxstream import operators as rxo
from rxstream.core._demand import subscribe_upstream
from rxstream.operators._backpressure_buffer import Overflow

from .support import FiveOperators, frame

N = 40
MAX_PENDING = 5


class Producer:
    """A fast async source of frames that counts how many it has produced."""

    def __init__(self, n: int = N) -> None:
        self.n = n
        self.produced = 0

    async def frames(self) -> AsyncIterator[bytes]:
        for i in range(self.n):
            self.produced += 1
            yield frame(i, f"<{i}>", i == self.n - 1)  # never suspends: only demand can hold it back


async def consume_slowly(producer: Producer, overflow: Any) -> tuple[list[int], list[int], Exception | None]:
    """Take deltas one at a time, yielding to the loop between them; record how far ahead the producer ran."""
    stream = rxstream.from_async_iterable(producer.frames()).pipe(
        rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(MAX_PENDING, overflow), rxo.accumulate()
    )
    received: list[int] = []
    ahead: list[int] = []
    try:
        async for delta in rxstream.to_async_iterable(stream):
            received.append(delta.chunk.index)
            for _ in range(3):  # a slow consumer: the producer task gets every chance to run ahead
                await asyncio.sleep(0)
            ahead.append(producer.produced - len(received))
    except rxstream.StreamError as error:
        return received, ahead, error
    return received, ahead, None


async def test_block_never_lets_the_producer_run_more_than_max_pending_ahead() -> None:
    producer = Producer()
    received, ahead, error = await consume_slowly(producer, "block")
    assert error is None and received == list(range(N))
    assert max(ahead) == MAX_PENDING  # what the buffer holds while the consumer is busy


async def test_without_demand_the_same_producer_runs_to_the_end(five: Callable[..., FiveOperators]) -> None:
    """The control for the test above: an eager consumer lets the producer finish at once."""
    producer = Producer()
    response = await rxstream.from_async_iterable(producer.frames()).pipe(five(max_pending=MAX_PENDING))
    assert response.text == "".join(f"<{i}>" for i in range(N)) and response.stats.buffer_high_water == 0


async def test_drop_newest_keeps_the_queue_and_discards_arrivals() -> None:
    received, _, error = await consume_slowly(Producer(), "drop_newest")
    assert error is None
    assert received == list(range(MAX_PENDING + 1))  # the one handed over, then the queue as it was


async def test_drop_oldest_keeps_the_newest() -> None:
    received, _, error = await consume_slowly(Producer(), "drop_oldest")
    assert error is None
    assert received == [0, *range(N - MAX_PENDING, N)]


async def test_error_delivers_the_queue_then_fails() -> None:
    producer = Producer()
    received, _, error = await consume_slowly(producer, "error")
    assert isinstance(error, rxstream.BufferOverflowError)
    assert error.index == MAX_PENDING + 1 and "max_pending" in str(error)
    assert received == list(range(MAX_PENDING + 1))
    assert producer.produced == MAX_PENDING + 2  # the source stopped at the overflow


async def test_drops_are_counted_in_the_stats() -> None:
    producer = Producer()
    iterator = rxstream.to_async_iterable(
        rxstream.from_async_iterable(producer.frames()).pipe(
            rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(MAX_PENDING, "drop_oldest")
        )
    )
    received = []
    async for chunk in iterator:
        received.append(chunk.index)
        await asyncio.sleep(0)
    stats = iterator.stats
    assert stats.dropped == N - len(received) and stats.buffer_high_water == MAX_PENDING


def test_a_response_with_drops_is_not_complete() -> None:
    stats = rxstream.Stats(dropped=2)
    stream = reactivex.of(rxstream.Chunk(0, "a"), rxstream.Chunk(3, "d", True)).pipe(rxo.accumulate(), rxo.finalize())
    responses: list[rxstream.Response] = []
    subscribe_upstream(stream, Observer(responses.append), None, stats=stats, demand=None)
    (response,) = responses
    assert response.text == "ad" and not response.complete and response.stats == stats


PAUSE_AT = 10  # past the first chunk, which the fused pipeline's fast path leaves to the stages


@pytest.mark.parametrize(
    ("overflow", "read", "kept", "ending"),
    [
        ("block", PAUSE_AT + MAX_PENDING, [*range(N)], None),  # the source waits; all comes once the consumer is ready
        ("drop_newest", N, [*range(PAUSE_AT + MAX_PENDING)], "the stream ended before its final chunk"),
        ("drop_oldest", N, [*range(PAUSE_AT), *range(N - MAX_PENDING, N)], None),
        ("error", PAUSE_AT + MAX_PENDING + 1, [*range(PAUSE_AT + MAX_PENDING)], "buffer overflow"),
    ],
)
def test_a_consumer_that_stops_taking_holds_the_whole_chain_back(
    five: Callable[..., FiveOperators], overflow: Overflow, read: int, kept: list[int], ending: str | None
) -> None:
    """The consumer below the response stops being ready as frame PAUSE_AT is read: the buffer
    queues what comes from then on (the fused pipeline's fast path must leave it to it), and the
    source reads no further than the strategy lets it, until the consumer is ready again."""
    demand = rxstream.Demand()
    pulled: list[int] = []

    def frames() -> Iterator[bytes]:
        for i in range(N):
            pulled.append(i)
            if i == PAUSE_AT:
                demand.pause()
            yield frame(i, f"<{i}>", i == N - 1)

    responses: list[rxstream.Response] = []
    errors: list[Exception] = []
    stream = rxstream.from_frames(frames()).pipe(five(max_pending=MAX_PENDING, overflow=overflow))
    subscribe_upstream(stream, Observer(responses.append, errors.append), None, stats=rxstream.Stats(), demand=demand)
    assert len(pulled) == read and not responses and not errors
    demand.resume()
    text = "".join(f"<{i}>" for i in kept)
    if ending is None:
        (response,) = responses
        assert response.text == text and response.complete == (overflow == "block")
        assert response.stats.dropped == N - len(kept)
    else:
        (error,) = errors
        assert isinstance(error, rxstream.StreamError) and error.partial is not None and error.partial.text == text
        assert ending in str(error)


async def test_demand_reaches_a_synchronous_source() -> None:
    pulled: list[int] = []

    def frames() -> Any:
        for i in range(10):
            pulled.append(i)
            yield frame(i, str(i), i == 9)

    stream = rxstream.from_frames(frames()).pipe(rxo.parse(), rxo.reorder(), rxo.accumulate())
    seen = []
    async for delta in rxstream.to_async_iterable(stream):
        seen.append(delta.text)
        assert len(pulled) == len(seen)  # one frame read per item taken
    assert seen == [str(i) for i in range(10)]


async def test_leaving_the_loop_early_stops_the_source() -> None:
    producer = Producer()
    iterator = rxstream.to_async_iterable(
        rxstream.from_async_iterable(producer.frames()).pipe(rxo.parse(), rxo.backpressure_buffer(MAX_PENDING))
    )
    first = await anext(iterator)
    await iterator.aclose()
    for _ in range(5):
        await asyncio.sleep(0)
    assert first.index == 0 and producer.produced <= MAX_PENDING + 2
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        rxo.backpressure_buffer(0)
    with pytest.raises(ValueError, match="overflow must be one of"):
        rxo.backpressure_buffer(5, "drop_latest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        rxo.reorder(0)
