"""publish, in memory: against a StreamSink that keeps its entries in a list (a sink of a user's own)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable

import rxstream
from rxstream import Chunk, ThinkingBlock, ToolCallFragment
from rxstream import operators as rxo
from rxstream.core._stream_sink import Fields
from rxstream.protocol._stream_entries import RecordedFailure, read_entry

from .support import Outcome


class ListSink:
    """Entries in a list; each append waits for ``gate`` (when given), and fails once ``fail_at`` were stored."""

    name = "a list"

    def __init__(self, gate: asyncio.Event | None = None, fail_at: int | None = None) -> None:
        self.entries: list[Fields] = []
        self.appends: list[tuple[int, bool]] = []  # each append's size and whether it was terminal
        self.gate = gate
        self.fail_at = fail_at

    async def append(self, entries: Sequence[Fields], *, terminal: bool) -> None:
        await asyncio.sleep(0)  # as a round trip does, let the deltas that come meanwhile gather
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_at is not None and len(self.entries) + len(entries) > self.fail_at:
            raise ConnectionResetError("the sink's server went away")
        self.entries.extend(entries)
        self.appends.append((len(entries), terminal))


async def outcome_of(observable: Observable[Any]) -> Outcome:
    outcome = Outcome()
    ended = asyncio.get_running_loop().create_future()

    def on_error(error: Exception) -> None:
        outcome.error = error
        ended.set_result(None)

    def on_completed() -> None:
        outcome.completed = True
        ended.set_result(None)

    observable.subscribe(outcome.items.append, on_error, on_completed)
    await asyncio.wait_for(ended, 10)
    return outcome


FRAGMENT = st.builds(
    ToolCallFragment,
    st.integers(0, 2),
    st.none() | st.text(max_size=3),
    st.none() | st.text(max_size=3),
    st.text(max_size=5),
)
# an Anthropic thinking block's start (its index, a signature maybe), or a redacted one whole, or
# a Responses reasoning item's end (the item whole)
BLOCK = (
    st.builds(ThinkingBlock, st.just(""), st.none() | st.text(max_size=4), st.none(), st.integers(0, 9))
    | st.builds(ThinkingBlock, data=st.text(min_size=1, max_size=4), index=st.integers(0, 9))
    | st.builds(ThinkingBlock, index=st.integers(0, 9), item=st.text(min_size=1, max_size=4))
)
CHUNK = st.builds(
    lambda data, reasoning, refusal, tool_calls, finish, usage, signature, block: Chunk(
        0,
        data,
        reasoning=reasoning,
        refusal=refusal,
        tool_calls=tool_calls,
        finish_reason=finish,
        usage=usage,
        signature=signature,
        thinking_block=block,
    ),
    st.text(max_size=8),
    st.none() | st.text(max_size=4),
    st.none() | st.text(max_size=4),
    st.none() | st.lists(FRAGMENT, min_size=1, max_size=2).map(tuple),
    st.none() | st.sampled_from(["stop", "length"]),
    st.none() | st.fixed_dictionaries({"total_tokens": st.integers(0, 99)}),
    st.none() | st.text(max_size=4),
    st.none() | BLOCK,
)


def numbered(chunks: list[Chunk], *, final: bool) -> list[Chunk]:
    last = len(chunks) - 1
    return [chunk._replace(index=i, is_final=final and i == last) for i, chunk in enumerate(chunks)]


def read_back(entries: list[Fields]) -> rxstream.Response:
    """The response a reader of the entries makes: their chunks through accumulate and finalize."""
    chunks = [chunk for chunk in map(read_entry, entries) if isinstance(chunk, Chunk)]
    assert len(chunks) == len(entries)
    outcome = Outcome()
    reactivex.from_iterable(chunks).pipe(rxo.accumulate(), rxo.finalize()).subscribe(outcome.items.append)
    response: rxstream.Response = outcome.items[0]
    return response


def same_content(one: rxstream.Response, other: rxstream.Response) -> None:
    assert one.thinking == other.thinking  # each block's text, signature, redacted data, index and item
    assert (one.text, one.reasoning, one.refusal, one.tool_calls, one.finish_reason, one.parts, one.chunks) == (
        other.text,
        other.reasoning,
        other.refusal,
        other.tool_calls,
        other.finish_reason,
        other.parts,
        other.chunks,
    )


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(CHUNK, min_size=1, max_size=30), max_batch=st.integers(1, 8))
def test_publish_passes_every_delta_on_and_its_entries_give_the_same_response(
    chunks: list[Chunk], max_batch: int
) -> None:
    chunks = numbered(chunks, final=True)

    async def both() -> tuple[rxstream.Response, rxstream.Response, ListSink]:
        sink = ListSink()
        published = await rxstream.from_frames(chunks).pipe(
            rxo.accumulate(), rxo.publish(sink, max_batch=max_batch), rxo.finalize()
        )
        plain = await rxstream.from_frames(chunks).pipe(rxo.accumulate(), rxo.finalize())
        return published, plain, sink

    published, plain, sink = asyncio.run(both())
    same_content(published, plain)
    same_content(read_back(sink.entries), plain)
    assert [int(fields["n"]) for fields in sink.entries] == list(range(len(chunks)))
    assert [fields.get("end") for fields in sink.entries] == [None] * (len(chunks) - 1) + ["done"]
    assert sink.entries[-1]["characters"] == str(len(plain.text))
    assert [terminal for _, terminal in sink.appends] == [False] * (len(sink.appends) - 1) + [True]
    assert max(size for size, _ in sink.appends) <= max_batch


async def test_an_error_upstream_is_recorded_with_the_partial_length_then_passed_on() -> None:
    sink = ListSink()
    lost = rxstream.ConnectionLostError("wss://example.test/stream", "reset", 4)
    chunks = numbered([Chunk(0, "ab"), Chunk(0, "cde")], final=False)
    source = reactivex.concat(rxstream.from_frames(chunks), reactivex.throw(lost))
    outcome = await outcome_of(source.pipe(rxo.accumulate(), rxo.publish(sink)))
    assert [delta.text for delta in outcome.items] == ["ab", "cde"]
    assert outcome.error is lost
    assert read_entry(sink.entries[-1]) == RecordedFailure(2, "ConnectionLostError", str(lost), 5)
    assert len(sink.entries) == 3


async def test_a_stream_that_completes_without_its_final_chunk_is_recorded_as_incomplete() -> None:
    sink = ListSink()
    outcome = await outcome_of(rxstream.from_frames([Chunk(0, "ab")]).pipe(rxo.accumulate(), rxo.publish(sink)))
    assert outcome.completed and len(outcome.items) == 1
    failure = read_entry(sink.entries[-1])
    assert isinstance(failure, RecordedFailure)
    assert (failure.number, failure.error_type, failure.characters) == (1, "IncompleteStreamError", 2)


async def test_while_the_sink_is_slow_the_deltas_gather_into_one_batch_and_the_source_is_paused() -> None:
    gate = asyncio.Event()
    sink = ListSink(gate)
    pulled = 0

    def frames() -> Iterator[Chunk]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield Chunk(i, f"{i} ", is_final=i == 99)

    pending = asyncio.ensure_future(
        rxstream.from_frames(frames()).pipe(rxo.accumulate(), rxo.publish(sink, max_batch=10), rxo.finalize())
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert pulled == 20  # ten in the append under way, ten waiting: then demand stopped the source
    gate.set()
    response = await pending
    assert response.text == "".join(f"{i} " for i in range(100))
    assert [size for size, _ in sink.appends] == [10] * 10


async def test_a_failed_append_ends_the_stream_typed_and_stops_the_source() -> None:
    sink = ListSink(fail_at=3)
    pulled = 0

    def frames() -> Iterator[Chunk]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield Chunk(i, "x")

    outcome = await outcome_of(rxstream.from_frames(frames()).pipe(rxo.accumulate(), rxo.publish(sink, max_batch=2)))
    error = outcome.error
    assert isinstance(error, rxstream.PublishFailedError)
    assert isinstance(error.__cause__, ConnectionResetError)
    assert error.published == len(sink.entries) == 2  # the batch that would pass 3 entries failed whole
    assert len(outcome.items) == error.published  # only what was stored went on
    assert pulled < 10


def test_publish_checks_its_arguments_and_needs_a_loop() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        rxo.publish(ListSink(), max_batch=0)
    outcome = Outcome()
    rxstream.from_frames([Chunk(0, "a", is_final=True)]).pipe(rxo.accumulate(), rxo.publish(ListSink())).subscribe(
        outcome.items.append, lambda error: setattr(outcome, "error", error)
    )
    assert isinstance(outcome.error, RuntimeError) and "event loop" in str(outcome.error)
