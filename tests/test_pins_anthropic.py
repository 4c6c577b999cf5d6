"""parse_sse on Anthropic's Messages stream, pinned where the in-memory suite left it loose
(issue 23, item 5): thinking, redacted thinking and text blocks with what their
content_block_start carries, the stop details, the usage, message_stop; and the in-stream
error reports. Event shapes from https://docs.anthropic.com/en/docs/build-with-claude/streaming;
the anthropic SDK's accumulator starts each block from its content_block_start and appends the
deltas, as these expect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from reactivex.subject import Subject

import rxstream
from rxstream import operators as rxo

from .support import run
from .test_pins_streams import body, error_of, sse, streamed

__all__ = ["sse"]  # the fixture, used by name

USAGE = {"input_tokens": 25, "output_tokens": 1}
START = {
    "type": "message_start",
    "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": USAGE},
}
STOP = {"type": "message_stop"}


def named(*events: dict[str, Any]) -> bytes:
    """Anthropic's SSE body: each event named by its type."""
    return b"".join(
        b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n" for event in events
    )


def block(index: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": content}


def change(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def finish(reason: str, **delta: Any) -> dict[str, Any]:
    return {"type": "message_delta", "delta": {"stop_reason": reason, **delta}, "usage": {"output_tokens": 15}}


def test_each_block_starts_from_what_its_content_block_start_carries(sse: Callable[..., Any]) -> None:
    events = [
        START,
        block(0, {"type": "thinking", "thinking": "Hmm.", "signature": "sigA"}),
        block(1, {"type": "redacted_thinking", "data": "EmwKAhgB"}),
        block(2, {"type": "thinking", "thinking": "", "signature": ""}),
        change(2, {"type": "thinking_delta", "thinking": "More."}),
        change(2, {"type": "signature_delta", "signature": "sigC"}),
        block(3, {"type": "text", "text": "Hi "}),
        change(3, {"type": "text_delta", "text": "there."}),
        finish("end_turn"),
        STOP,
    ]
    response = streamed(sse(), named(*events))
    assert response.text == "Hi there." and response.reasoning == "Hmm.More."
    assert response.thinking == (
        rxstream.ThinkingBlock("Hmm.", "sigA", index=0),
        rxstream.ThinkingBlock(data="EmwKAhgB", index=1),
        rxstream.ThinkingBlock("More.", "sigC", index=2),
    )
    assert response.complete and response.finish_reason == "end_turn"
    assert response.stats.usage is not None and response.stats.usage["output_tokens"] == 15


def test_a_refusals_stop_details_are_kept(sse: Callable[..., Any]) -> None:
    details = {"type": "refusal", "category": "cyber", "explanation": "…"}
    events = [START, block(0, {"type": "text", "text": ""}), finish("refusal", stop_details=details), STOP]
    response = streamed(sse(), named(*events))
    assert response.finish_reason == "refusal" and response.stop_details == details
    assert (
        response.chunks == 3
    )  # message_start (its usage), message_delta, message_stop: the empty text block adds none


def test_message_delta_without_usage_keeps_message_starts(sse: Callable[..., Any]) -> None:
    # Compatible servers may leave message_delta's usage out: message_start's counts stand.
    events = [
        START,
        change(0, {"type": "text_delta", "text": "Hi"}),
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        STOP,
    ]
    response = streamed(sse(), named(*events))
    assert response.text == "Hi" and response.stats.usage is not None
    assert (response.stats.usage["input_tokens"], response.stats.usage["output_tokens"]) == (25, 1)


def test_a_cut_stream_keeps_message_starts_usage(sse: Callable[..., Any]) -> None:
    error = streamed(sse(), named(START, change(0, {"type": "text_delta", "text": "Hi"})))
    assert isinstance(error, rxstream.StreamError) and error.partial is not None
    assert error.partial.text == "Hi" and error.partial.stats.usage is not None
    assert error.partial.stats.usage["input_tokens"] == 25


def test_message_stop_ends_the_answer_at_once(sse: Callable[..., Any]) -> None:
    # README: "Done is done: [DONE], Anthropic's message_stop ... ends the stream at once",
    # without waiting for the connection to end.
    subject: Subject[rxstream.SSEEvent] = Subject()
    responses: list[rxstream.Response] = []
    subject.pipe(sse()).subscribe(responses.append)
    for event in rxstream.sse_events(
        [named(START, change(0, {"type": "text_delta", "text": "Hi"}), finish("end_turn"), STOP)]
    ):
        subject.on_next(event)
    assert len(responses) == 1 and responses[0].complete and responses[0].text == "Hi"


def test_message_stop_is_the_one_final_chunk() -> None:
    events = rxstream.sse_events(
        [named(START, change(0, {"type": "text_delta", "text": "Hi"}), finish("end_turn"), STOP)]
    )
    chunks = run(rxstream.from_frames(events).pipe(rxo.parse_sse())).items
    assert [chunk.is_final for chunk in chunks] == [False, False, False, True]


def test_the_usage_chunk_after_the_finish_reason_is_not_final() -> None:
    # OpenAI's stream_options.include_usage: a last chunk with empty choices and the usage, then [DONE].
    usage = {
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    text = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
    }
    chunks = run(rxstream.from_frames(rxstream.sse_events([body(text, usage)])).pipe(rxo.parse_sse())).items
    assert [chunk.is_final for chunk in chunks] == [False, False, True] and chunks[1].usage is not None


def test_an_error_given_as_a_string_is_the_servers_message(sse: Callable[..., Any]) -> None:
    # {"error": "…"}: some compatible servers (and proxies) send the message alone.
    error = streamed(sse(), body({"error": "Internal server error"}, done=False))
    assert error_of(error, rxstream.ResponseFailedError).server_message == "Internal server error"


def test_a_tool_use_block_at_index_0_and_a_negative_index(sse: Callable[..., Any]) -> None:
    # The tool_use content block, its input streamed as input_json_delta, keyed by the block's index.
    tool = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    events = [
        START,
        block(0, tool),
        change(0, {"type": "input_json_delta", "partial_json": "{}"}),
        finish("tool_use"),
        STOP,
    ]
    response = streamed(sse(), named(*events))
    assert response.tool_calls == (rxstream.ToolCall(0, "toolu_1", "get_weather", "{}"),)
    error = streamed(sse(), named(START, block(-1, tool), STOP))
    assert "index" in str(error_of(error, rxstream.FrameError))
