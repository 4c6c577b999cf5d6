"""The fused pipelines' defaults and what the fast path takes, pinned where the in-memory suite left
them loose (issue 23): README, "rxstream.pipeline(window=64, max_pending=5) is the five of them
fused", "How demand flows" (the buffer's demand is "not ready while max_pending items wait", and
sources check it "before reading each item"), and FastPath's docstring."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

import rxstream
from rxstream.operators._reorder import ReorderStage

from .support import Outcome, assert_same_outcome, frame, piped, run, valve


def frames_read(chain: rxstream.Operator[Any, rxstream.Response]) -> int:
    """How many frames of a long stream the source reads for ``chain`` with a consumer that takes nothing."""
    read: list[int] = []

    def frames() -> Iterator[bytes]:
        for i in range(40):
            read.append(i)
            yield frame(i, "x", i == 39)

    rxstream.from_frames(frames()).pipe(chain, valve(rxstream.Demand(ready=False))).subscribe()
    return len(read)


def test_the_pipeline_queues_5_chunks_for_a_consumer_that_is_not_ready() -> None:
    assert frames_read(rxstream.pipeline()) == 5
    assert frames_read(rxstream.pipeline(max_pending=2)) == 2, "the control: the argument is what counts"


def test_the_sse_and_responses_pipelines_queue_5_chunks_too() -> None:
    def sse_frames(n: int) -> Iterator[rxstream.SSEEvent]:
        for i in range(n):
            read.append(i)
            content = {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}
            yield rxstream.SSEEvent(data=orjson.dumps(content).decode())

    read: list[int] = []
    rxstream.from_frames(sse_frames(40)).pipe(rxstream.sse_pipeline(), valve(rxstream.Demand(ready=False))).subscribe()
    assert len(read) == 5

    def responses_frames(n: int) -> Iterator[bytes]:
        for i in range(n):
            read.append(i)
            yield orjson.dumps(
                {
                    "type": "response.output_text.delta",
                    "sequence_number": i,
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "x",
                }
            )

    read = []
    rxstream.from_frames(responses_frames(40)).pipe(
        rxstream.responses_pipeline(), valve(rxstream.Demand(ready=False))
    ).subscribe()
    assert len(read) == 5


def refused_index(chain: rxstream.Operator[Any, rxstream.Response], early: bytes) -> int | None:
    """The index reorder names when ``early`` is the stream's only frame: itself if refused at once,
    None if it was held (the stream then fails only at its end, on the gap)."""
    error = run(rxstream.from_frames([early]).pipe(chain)).error
    cause = error if isinstance(error, rxstream.InvalidChunkError) else getattr(error, "__cause__", None)
    assert isinstance(cause, rxstream.InvalidChunkError), repr(error)
    return cause.received


def test_the_pipelines_window_is_64() -> None:
    # reorder: "a chunk window or more beyond the next expected index cannot be held".
    assert refused_index(rxstream.pipeline(), frame(63, "x")) is None
    assert refused_index(rxstream.pipeline(), frame(64, "x")) == 64


def test_the_responses_pipelines_window_is_64_sequence_numbers() -> None:
    def delta(number: int) -> bytes:
        event = {"type": "response.output_text.delta", "sequence_number": number, "item_id": "msg_1"}
        return orjson.dumps(event | {"output_index": 0, "content_index": 0, "delta": "x"})

    assert refused_index(rxstream.responses_pipeline(), delta(63)) is None
    assert refused_index(rxstream.responses_pipeline(), delta(64)) == 64


# --- FastPath: "a plain chunk arriving in order straight to the transcript" (README), not only the same result


@pytest.mark.parametrize("consumer", ["none", "ready"])
def test_the_fast_path_leaves_the_stages_only_what_is_not_a_plain_chunk_in_order(
    monkeypatch: pytest.MonkeyPatch, consumer: str
) -> None:
    # FastPath: "Anything else (a frame that is not a plain chunk, a duplicate, a chunk beyond the window,
    # a queue in the buffer, the first or the last chunk) goes to parse, or from parse's point on, the ordinary way."
    ordinary: list[int] = []
    hold = ReorderStage.on_next

    def counted(self: ReorderStage, chunk: rxstream.Chunk) -> None:
        ordinary.append(chunk.index)
        hold(self, chunk)

    frames: list[bytes | str] = [
        frame(0, "a"),  # the first chunk, which starts finalize's timer
        frame(1, "b"),
        frame(3, "d"),  # early: held as its data alone
        frame(2, "c"),  # releases 3
        frame(4, "e", image_url="https://img/4.png"),  # not plain
        frame(5, "f"),
        frame(5, "f"),  # a duplicate
        frame(6, "ǵé").decode(),  # a text frame, its bytes counted by encoding
        orjson.dumps({"chunk": {"index": 7, "data": "h", "is_final": False}}),  # no timestamp
        frame(9, "j"),  # early, 8 chunks into the stream: still within the window of 8
        frame(8, "i"),  # releases 9
        frame(10, "", True),  # the last chunk
    ]
    below = [valve(rxstream.Demand())] if consumer == "ready" else []
    expected = run(rxstream.from_frames(frames).pipe(piped(window=8, timer=lambda: 0.0), *below))
    monkeypatch.setattr(ReorderStage, "on_next", counted)
    fast = run(rxstream.from_frames(frames).pipe(rxstream.pipeline(window=8, timer=lambda: 0.0), *below))
    assert ordinary == [0, 4, 5, 10]
    assert_same_outcome(fast, expected)
    response = fast.items[0]
    assert response.text == "abcdefǵéhij" and response.complete
    stats = response.stats
    assert (stats.chunks, stats.duplicates, stats.out_of_order, stats.reorder_depth) == (12, 1, 2, 1)
    assert stats.bytes == sum(len(raw.encode() if isinstance(raw, str) else raw) for raw in frames)


# --- FragmentPath: "otherwise (... a queue in the buffer ...) parse emits the chunk the ordinary way"


@pytest.mark.parametrize("kind", ["fragments", "text"])
def test_what_the_fragment_path_would_take_waits_in_the_buffer_while_the_consumer_is_not_ready(kind: str) -> None:
    # How demand flows: the buffer holds what the consumer has not taken, and the source stops
    # reading once max_pending wait; a started call's fragments and plain text deltas are no exception.
    demand = rxstream.Demand()
    read_after_pause: list[int] = []

    def event(piece: str, finish: str | None = None) -> rxstream.SSEEvent:
        if kind == "text":
            return delta_event({"content": piece}, finish)
        return delta_event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, finish)

    def events() -> Iterator[rxstream.SSEEvent]:
        yield delta_event({"tool_calls": [{"index": 0, "id": "call_0", "function": {"name": "f", "arguments": ""}}]})
        yield event("<")  # taken by the fragment path while the consumer is ready
        demand.pause()  # the consumer is busy from here on
        for i in range(8):
            read_after_pause.append(i)
            yield event(str(i))
        yield event(">", finish="stop")
        yield rxstream.SSEEvent("[DONE]")

    outcome = Outcome()
    rxstream.from_frames(events()).pipe(rxstream.sse_pipeline(max_pending=5), valve(demand)).subscribe(
        outcome.items.append
    )
    assert read_after_pause == [0, 1, 2, 3, 4] and outcome.items == []
    demand.resume()
    (response,) = outcome.items
    arguments = "<01234567>" if kind == "fragments" else ""
    assert [(call.id, call.arguments) for call in response.tool_calls] == [("call_0", arguments)]
    assert response.text == ("<01234567>" if kind == "text" else "")
    assert response.stats.buffer_high_water == 5 and response.complete and response.chunks == 12


def delta_event(delta: dict[str, Any], finish: str | None = None) -> rxstream.SSEEvent:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return rxstream.SSEEvent(orjson.dumps({"choices": [choice]}).decode())
