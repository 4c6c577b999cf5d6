"""rxstream.testing's strategies produce what they claim: every stream gives its expected Response
through rxstream's pipeline, fused and piped; every disordered stream stays within its window and
ends as the README promises; the oracles tell a difference from none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo
from rxstream.testing import (
    Disordered,
    Failure,
    Stream,
    assert_outcome,
    assert_same_outcome,
    chat_streams,
    chunk_streams,
    disorder,
    outcome_of,
    responses_streams,
    streams,
)
from tests.test_responses_differential import expected, got, through_the_sdk

PARSERS: dict[str, Callable[[], Any]] = {
    "chunks": rxo.parse,
    "chat": rxo.parse_sse,
    "anthropic": rxo.parse_sse,
    "responses": rxo.parse_responses,
}


def piped(stream: Stream, window: int = 64) -> Callable[[Observable[Any]], Observable[Any]]:
    """The protocol's parser and the other four operators, piped one by one."""
    return lambda source: source.pipe(
        PARSERS[stream.protocol](), rxo.reorder(window), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
    )


@settings(max_examples=100, deadline=None)
@given(streams())
def test_every_stream_gives_its_expected_response_fused_and_piped(stream: Stream) -> None:
    assert_outcome(assert_same_outcome(stream.pipeline(), piped(stream), stream), stream.expected)


@settings(max_examples=60, deadline=None)
@given(responses_streams())
def test_every_responses_stream_expects_what_the_openai_sdk_makes_of_it(stream: Stream) -> None:
    final, _ = through_the_sdk(list(stream.messages))
    assert got(stream.expected) == expected(final)


@settings(max_examples=40, deadline=None)
@given(chunk_streams(text=st.text(max_size=30)))
def test_a_text_cut_anywhere_into_chunks_gives_that_text(stream: Stream) -> None:
    assert_outcome(outcome_of(rxstream.from_frames(stream.frames).pipe(stream.pipeline())), stream.expected)


@settings(max_examples=100, deadline=None)
@given(st.data(), chunk_streams() | responses_streams(), st.integers(1, 12), st.integers(0, 3))
def test_disordered_streams_stay_within_their_window(
    data: st.DataObject, stream: Stream, window: int, drops: int
) -> None:
    """When a chunk arrives, every earlier one still to come is less than ``window`` before it;
    the copies come after their original, and nothing else is sent."""
    delivered = data.draw(disorder(stream, window=window, drops=drops))
    seen: set[int] = set()
    for index in delivered.indices:
        sent_later = set(delivered.indices) - seen
        assert all(index - missing < window for missing in sent_later if missing < index)
        seen.add(index)
    assert len(set(range(len(stream.frames))) - seen) <= drops
    assert delivered.frames == tuple(stream.frames[index] for index in delivered.indices)


@settings(max_examples=120, deadline=None)
@given(st.data(), chunk_streams() | responses_streams(), st.integers(1, 12), st.integers(0, 3))
def test_a_disordered_stream_ends_as_the_readme_promises_fused_and_piped(
    data: st.DataObject, stream: Stream, window: int, drops: int
) -> None:
    delivered: Disordered = data.draw(disorder(stream, window=window, drops=drops))
    outcome = assert_same_outcome(delivered.pipeline(), piped(stream, window), delivered.frames)
    assert_outcome(outcome, delivered.expected)
    lost = set(range(len(stream.frames))) - set(delivered.indices)
    assert isinstance(delivered.expected, Failure) == bool(lost)  # nothing lost: the whole Response


@settings(max_examples=5)
@given(st.data(), chat_streams())
def test_an_sse_chat_stream_cannot_be_disordered(data: st.DataObject, stream: Stream) -> None:
    with pytest.raises(ValueError, match="numbered by position"):
        data.draw(disorder(stream))


def test_assert_same_outcome_tells_a_different_response_apart() -> None:
    stream = Stream(
        "chunks",
        (rxstream.testing.chunk_frame(0, "quiet", True),),
        rxstream.Response("quiet", True, 1, (rxstream.Part("text", "quiet"),)),
    )

    def upper(chunk: rxstream.Chunk) -> rxstream.Chunk:
        return chunk._replace(data=chunk.data.upper())

    shout = ops.map(upper)
    fused = stream.pipeline()
    with pytest.raises(AssertionError):
        assert_same_outcome(
            fused, lambda source: source.pipe(rxo.parse(), shout, rxo.accumulate(), rxo.finalize()), stream
        )
    with pytest.raises(AssertionError):
        assert_outcome(outcome_of(rxstream.from_frames([]).pipe(fused)), stream.expected)
    assert_outcome(assert_same_outcome(fused, piped(stream), stream), stream.expected)
