"""The SSE and Responses parsers and the stats, pinned through the public pipelines where the
in-memory suite left them loose (issue 23, items 2, 5, 10 and 12). Each test pins a sentence of
parse_sse's, parse_responses' or the README's description, not how the parsers are written, and
runs each stream through the fused pipeline and through the operators piped one by one."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from reactivex import Observable

import rxstream
from rxstream import operators as rxo

from .responses_events import FunctionCall, Message, response_events
from .support import frame, run

Pipeline = Callable[[], Callable[[Observable[Any]], Observable[rxstream.Response]]]


def piped_sse(choice: int = 0) -> Callable[[Observable[Any]], Observable[rxstream.Response]]:
    def apply(source: Observable[Any]) -> Observable[rxstream.Response]:
        return source.pipe(
            rxo.parse_sse(choice), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
        )

    return apply


def fused_sse(choice: int = 0) -> Callable[[Observable[Any]], Observable[rxstream.Response]]:
    return rxstream.sse_pipeline(choice=choice)


@pytest.fixture(params=[piped_sse, fused_sse], ids=["piped", "fused"])
def sse(request: pytest.FixtureRequest) -> Callable[..., Callable[[Observable[Any]], Observable[rxstream.Response]]]:
    chain: Callable[..., Callable[[Observable[Any]], Observable[rxstream.Response]]] = request.param
    return chain


def body(*messages: object, done: bool = True) -> bytes:
    lines = [b"data: " + (m if isinstance(m, bytes) else orjson.dumps(m)) + b"\n\n" for m in messages]
    return b"".join(lines) + (b"data: [DONE]\n\n" if done else b"")


def delta(
    content: str | None = None, *, index: int | None = 0, finish: str | None = None, **fields: Any
) -> dict[str, Any]:
    choice: dict[str, Any] = {"delta": {"content": content, **fields}, "finish_reason": finish}
    if index is not None:
        choice["index"] = index
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "choices": [choice]}


def streamed(chain: Callable[[Observable[Any]], Observable[rxstream.Response]], raw: bytes) -> Any:
    outcome = run(rxstream.from_frames(rxstream.sse_events([raw])).pipe(chain))
    return outcome.items[0] if outcome.items else outcome.error


def error_of(error: object, kind: type[Exception]) -> Any:
    """The error of ``kind`` that ended a stream: itself, or the cause of the IncompleteStreamError carrying the partial."""
    found = error if isinstance(error, kind) else getattr(error, "__cause__", None)
    assert isinstance(found, kind), f"expected {kind.__name__}, got {error!r}"
    return found


# --- parse_sse (item 5)


def test_a_body_ending_after_the_finish_reason_without_done_ends_with_a_final_chunk() -> None:
    # parse_sse: "An input that ends right after a finish reason, without [DONE], gets its final chunk at the end."
    events = rxstream.sse_events([body(delta("Hi"), delta(finish="stop"), done=False)])
    chunks = run(rxstream.from_frames(events).pipe(rxo.parse_sse())).items
    assert [chunk.is_final for chunk in chunks] == [False, False, True]
    assert [chunk.index for chunk in chunks] == [0, 1, 2] and chunks[-1].finish_reason == "stop"


def test_a_body_ending_after_the_finish_reason_without_done_is_complete(sse: Callable[..., Any]) -> None:
    response = streamed(sse(), body(delta("Hi"), delta(" there"), delta(finish="length"), done=False))
    assert isinstance(response, rxstream.Response)
    assert response.complete and response.text == "Hi there" and response.finish_reason == "length"


def test_a_body_ending_without_a_finish_reason_is_incomplete(sse: Callable[..., Any]) -> None:
    error = streamed(sse(), body(delta("Hi"), done=False))
    assert isinstance(error, rxstream.StreamError) and error.partial is not None
    assert error.partial.text == "Hi" and not error.partial.complete


def test_only_the_chosen_choice_is_read(sse: Callable[..., Any]) -> None:
    # parse_sse's choice: "The choices[].index to read" (a request with n > 1 streams every choice).
    raw = body(
        delta("A", index=0),
        delta("b", index=1),
        delta("B", index=0),
        delta("c", index=1, finish="stop"),
        delta(index=0, finish="stop"),
    )
    first, second = streamed(sse(0), raw), streamed(sse(1), raw)
    assert (first.text, first.finish_reason, first.chunks) == ("AB", "stop", 4)
    assert (second.text, second.finish_reason, second.chunks) == ("bc", "stop", 3)


def test_a_choice_without_index_is_the_first(sse: Callable[..., Any]) -> None:
    # Single-choice servers may leave choices[].index out; it is then choice 0.
    response = streamed(sse(), body(delta("Hi", index=None), delta(index=None, finish="stop")))
    assert response.text == "Hi" and response.finish_reason == "stop"
    assert streamed(sse(1), body(delta("Hi", index=None), delta(index=None, finish="stop"))).text == ""


@pytest.mark.parametrize("shape", ["missing", "null"])
def test_a_choice_without_a_delta_may_carry_the_finish_reason(sse: Callable[..., Any], shape: str) -> None:
    last = {"choices": [{"index": 0, "finish_reason": "stop"} | ({"delta": None} if shape == "null" else {})]}
    response = streamed(sse(), body(delta("Hi"), last))
    assert isinstance(response, rxstream.Response) and response.text == "Hi" and response.finish_reason == "stop"


@pytest.mark.parametrize(
    "call",
    [
        {"index": -1, "function": {"arguments": "{}"}},
        {"index": True, "function": {"arguments": "{}"}},
        {"index": 0, "id": "call_1", "function": {"name": 7, "arguments": ""}},
        {"index": 0, "id": 7, "function": {"name": "f", "arguments": ""}},
        {"index": 0, "function": {"arguments": 1}},
    ],
    ids=["negative index", "bool index", "name not a string", "id not a string", "arguments not a string"],
)
def test_a_tool_call_fragment_of_the_wrong_shape_is_a_frame_error(
    sse: Callable[..., Any], call: dict[str, Any]
) -> None:
    # parse_sse's Raises: "an event that is ... not the expected shape".
    start = delta(
        tool_calls=[{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]
    )
    error = streamed(sse(), body(start, delta(tool_calls=[call]), delta(finish="tool_calls")))
    assert error_of(error, rxstream.FrameError).number == 2


def test_an_event_whose_data_is_not_json_is_a_frame_error(sse: Callable[..., Any]) -> None:
    error = streamed(sse(), body(delta("Hi"), b"{not json", delta(finish="stop")))
    assert error_of(error, rxstream.FrameError).number == 2 and error.partial.text == "Hi"


def test_the_sse_stats_count_the_events_data_bytes(sse: Callable[..., Any]) -> None:
    messages = [delta("héllo"), delta(" wörld"), delta(finish="stop")]
    response = streamed(sse(), body(*messages))
    assert response.stats.bytes == sum(len(orjson.dumps(m)) for m in messages) + len(b"[DONE]")
    assert response.stats.chunks == response.chunks == 4


# --- parse_responses (items 10 and 12)


def piped_responses() -> Callable[[Observable[Any]], Observable[rxstream.Response]]:
    def apply(source: Observable[Any]) -> Observable[rxstream.Response]:
        return source.pipe(
            rxo.parse_responses(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
        )

    return apply


@pytest.fixture(params=[piped_responses, rxstream.responses_pipeline], ids=["piped", "fused"])
def responses(request: pytest.FixtureRequest) -> Pipeline:
    chain: Pipeline = request.param
    return chain


def replay(chain: Pipeline, events: list[dict[str, Any]]) -> Any:
    outcome = run(rxstream.from_frames([orjson.dumps(event) for event in events]).pipe(chain()))
    return outcome.items[0] if outcome.items else outcome.error


def test_a_failure_surfaces_once_everything_numbered_before_it_is_delivered(responses: Pipeline) -> None:
    # parse_responses' Raises: ResponseFailedError "once every event numbered before it has been delivered".
    events = response_events([Message(["a", "b", "c"])], status="failed")
    failed = events[-1]
    *before, last_delta = [event for event in events[:-1] if event["type"] == "response.output_text.delta"]
    text_number = last_delta["sequence_number"]
    head = [event for event in events if event["sequence_number"] < text_number]
    later = {
        "type": "response.output_text.delta",
        "sequence_number": failed["sequence_number"] + 1,
        "delta": "never",
        "item_id": "x",
        "output_index": 0,
        "content_index": 0,
    }
    error = replay(responses, [*head, failed, last_delta, later])
    failure = error_of(error, rxstream.ResponseFailedError)
    assert failure.code == "server_error" and error.partial.text == "abc" and not error.partial.complete


def test_arguments_on_output_item_added_start_the_call(responses: Pipeline) -> None:
    events = response_events([FunctionCall("call_1", "get_weather", ['"Paris"}'])])
    for event in events:
        if event["type"] == "response.output_item.added":
            event["item"]["arguments"] = '{"city": '
    response = replay(responses, events)
    assert response.tool_calls == (rxstream.ToolCall(0, "call_1", "get_weather", '{"city": "Paris"}'),)


def test_completed_without_a_status_finishes_as_completed(responses: Pipeline) -> None:
    events = response_events([Message(["hi"])])
    del events[-1]["response"]["status"]
    response = replay(responses, events)
    assert response.complete and response.finish_reason == "completed" and response.text == "hi"


def test_the_responses_stats_count_events_and_utf8_bytes(responses: Pipeline) -> None:
    events = response_events([Message(["héllo ", "wörld ", "☃"])])
    texts = [orjson.dumps(event).decode() for event in events]
    outcome = run(rxstream.from_frames(texts).pipe(responses()))
    response = outcome.items[0]
    assert response.stats.bytes == sum(len(text.encode()) for text in texts)
    assert response.stats.chunks == response.chunks == len(events)


# --- the stats every pipeline keeps (item 12)


def test_duration_is_on_the_timer_given() -> None:
    clock = itertools.count(10.0, 0.5)
    response = run(
        rxstream.from_frames([frame(0, "a"), frame(1, "b", True)]).pipe(rxstream.pipeline(timer=lambda: next(clock)))
    ).items[0]
    assert response.stats.duration is not None and response.stats.time_to_first_chunk is not None
    assert 0 < response.stats.time_to_first_chunk < response.stats.duration and response.stats.duration % 0.5 == 0


# --- the fused pipeline's fast path against a resend (item 2)


@pytest.mark.parametrize(
    "resend",
    [frame(0, "a", True), frame(0, "a", text="!"), frame(0, "a", image_url="http://i/1")],
    ids=["now final", "now with text", "now with an image"],
)
def test_a_resend_that_now_carries_more_is_not_a_duplicate(resend: bytes) -> None:
    # reorder's Raises: "a duplicate with different content" is an InvalidChunkError, fused or piped.
    frames = [frame(0, "a"), frame(1, "b"), resend, frame(2, "c", True)]
    for chain in (
        rxstream.pipeline(),
        lambda source: source.pipe(
            rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
        ),
    ):
        error = run(rxstream.from_frames(frames).pipe(chain)).error
        assert error_of(error, rxstream.InvalidChunkError).received == 0
