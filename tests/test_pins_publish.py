"""publish, pinned where tests/test_publish.py left it loose (issue 23): each test pins a sentence of
publish's docstring, against the in-memory ListSink, with deltas that come while the loop runs."""

from __future__ import annotations

import asyncio

import reactivex
from reactivex import Subject

import rxstream
from rxstream import Chunk
from rxstream import operators as rxo
from rxstream.protocol._stream_entries import RecordedFailure, read_entry

from .support import valve
from .test_publish import ListSink, outcome_of


async def settle() -> None:
    """Let the appends under way and what follows them run."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_an_end_that_comes_once_everything_is_stored_is_recorded_then_passed_on() -> None:
    # "upstream failed: a terminal entry recording the error's class, message and the partial text's
    # length is appended, then the error passed on. A completion without the final chunk is recorded
    # as IncompleteStreamError": also when it comes after the last delta was stored and passed on.
    lost = rxstream.ConnectionLostError("wss://example.test/stream", "reset", 4)
    for end, kind in [(lost, "ConnectionLostError"), (None, "IncompleteStreamError")]:
        chunks: Subject[Chunk] = Subject()
        sink = ListSink()
        ending = asyncio.ensure_future(outcome_of(chunks.pipe(rxo.accumulate(), rxo.publish(sink))))
        await settle()
        chunks.on_next(Chunk(0, "ab"))
        await settle()
        assert len(sink.entries) == 1
        chunks.on_next(Chunk(1, "cde"))  # a delta after the append task went idle
        await settle()
        assert len(sink.entries) == 2
        if end is None:
            chunks.on_completed()
        else:
            chunks.on_error(end)
        outcome = await ending
        assert [delta.text for delta in outcome.items] == ["ab", "cde"]
        assert outcome.error is end and outcome.completed == (end is None)
        failure = read_entry(sink.entries[-1])
        assert isinstance(failure, RecordedFailure) and (failure.number, failure.error_type) == (2, kind)
        assert failure.characters == 5 and sink.appends[-1] == (1, True), "the terminal entry, appended as terminal"


async def test_a_completion_is_recorded_with_the_reason_finalize_gives() -> None:
    # "Readers (rxstream.from_redis_stream) thus end as the writer did": the writer's finalize fails
    # with IncompleteStreamError, and its reason is the recorded detail.
    sink = ListSink()
    writer = await outcome_of(
        rxstream.from_frames([Chunk(0, "ab")]).pipe(rxo.accumulate(), rxo.publish(sink), rxo.finalize())
    )
    failure = read_entry(sink.entries[-1])
    assert isinstance(writer.error, rxstream.IncompleteStreamError) and isinstance(failure, RecordedFailure)
    assert failure.error_type == "IncompleteStreamError" and failure.detail in str(writer.error)


async def test_an_error_before_any_delta_records_an_empty_partial() -> None:
    # "a terminal entry recording ... the partial text's length": nothing came, so 0.
    sink = ListSink()
    lost = rxstream.ConnectionLostError("wss://example.test/stream", "reset", 4)
    outcome = await outcome_of(reactivex.throw(lost).pipe(rxo.accumulate(), rxo.publish(sink)))
    assert outcome.error is lost
    assert [read_entry(entry) for entry in sink.entries] == [RecordedFailure(0, "ConnectionLostError", str(lost), 0)]


async def test_nothing_after_the_final_delta_is_published() -> None:
    # "f's entry is also the stream's terminal entry": nothing is appended after it.
    sink = ListSink()
    deltas = [Chunk(0, "a"), Chunk(1, "b", is_final=True), Chunk(2, "late")]
    outcome = await outcome_of(reactivex.from_iterable(deltas).pipe(rxo.accumulate(), rxo.publish(sink)))
    assert [delta.text for delta in outcome.items] == ["a", "b"] and outcome.completed
    assert [fields.get("end") for fields in sink.entries] == [None, "done"]


async def test_downstreams_demand_is_honoured() -> None:
    # "Downstream's demand is honoured as well": stored, but passed on only once the consumer is ready.
    sink = ListSink()
    demand = rxstream.Demand(ready=False)
    chunks = [Chunk(0, "a"), Chunk(1, "b", is_final=True)]
    ending = asyncio.ensure_future(
        outcome_of(reactivex.from_iterable(chunks).pipe(rxo.accumulate(), rxo.publish(sink), valve(demand)))
    )
    await settle()
    assert len(sink.entries) == 2 and not ending.done()
    demand.resume()
    outcome = await ending
    assert [delta.text for delta in outcome.items] == ["a", "b"] and outcome.completed


async def test_a_failed_append_counts_every_delta_not_appended() -> None:
    # PublishFailedError "says how many entries were stored" and how many were not: the failed batch and those waiting.
    sink = ListSink(fail_at=0)
    chunks = [Chunk(i, "x") for i in range(5)]
    outcome = await outcome_of(reactivex.from_iterable(chunks).pipe(rxo.accumulate(), rxo.publish(sink, max_batch=2)))
    error = outcome.error
    assert isinstance(error, rxstream.PublishFailedError)
    assert (error.published, error.unsent) == (0, 5) and outcome.items == []


async def test_the_default_batch_is_256() -> None:
    # README: rxo.publish(sink, max_batch=256); "max_batch: The most entries appended in one round trip".
    sink = ListSink()
    chunks = [Chunk(i, "x", is_final=i == 299) for i in range(300)]
    outcome = await outcome_of(reactivex.from_iterable(chunks).pipe(rxo.accumulate(), rxo.publish(sink)))
    assert outcome.completed and [size for size, _ in sink.appends] == [256, 44]
