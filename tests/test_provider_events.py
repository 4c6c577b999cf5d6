"""What real providers put in their streams, in memory: parse_sse fused (sse_pipeline) and piped alike.

Each stream replays a provider's documented (or reported) behaviour; the comment above each
test cites where. Over HTTP the same bodies go through from_sse, whose tests live beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from reactivex import Observable

import rxstream
from rxstream import operators as rxo
from rxstream.protocol._sse import SSEEvent

from .support import Outcome, run

Chain = Callable[[Observable[Any]], Observable[rxstream.Response]]


def piped_sse(source: Observable[Any]) -> Observable[rxstream.Response]:
    return source.pipe(rxo.parse_sse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize())


@pytest.fixture(params=[piped_sse, rxstream.sse_pipeline()], ids=["piped", "fused"])
def chain(request: pytest.FixtureRequest) -> Chain:
    chain: Chain = request.param
    return chain


def chat(*choices: dict[str, Any], **fields: Any) -> SSEEvent:
    """A chat.completion.chunk event."""
    body = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": list(choices)}
    return SSEEvent(orjson.dumps({**body, **fields}).decode())


def delta(content: str | None = None, finish_reason: str | None = None, index: int = 0, **more: Any) -> dict[str, Any]:
    fields = {} if content is None else {"content": content}
    return {"index": index, "delta": {**fields, **more}, "finish_reason": finish_reason}


def anthropic(type: str, **fields: Any) -> SSEEvent:
    """An Anthropic Messages event of ``type``, named so in its event line."""
    return SSEEvent(orjson.dumps({"type": type, **fields}).decode(), type)


def typed(outcome: Outcome) -> tuple[BaseException, rxstream.Response]:
    """The typed error a stream ended with, and the partial response kept for it (before and after
    the error design of issue 19: the error itself, or the IncompleteStreamError's cause)."""
    error = outcome.error
    assert error is not None, "the stream must fail"
    partial = getattr(error, "partial", None)
    assert isinstance(partial, rxstream.Response)
    if isinstance(error, rxstream.IncompleteStreamError) and error.__cause__ is not None:
        return error.__cause__, partial
    return error, partial


# Ollama's OpenAI-compatible stream sent "finish_reason": "" on every chunk
# (https://github.com/ollama/ollama/issues/4357); sglang too (https://github.com/sgl-project/sglang/issues/3912).
def test_an_empty_finish_reason_is_no_finish_reason(chain: Chain) -> None:
    events = [chat(delta(word, "")) for word in ("Hello", " there", "!", " I")]
    outcome = run(chain(rxstream.from_frames(events)))
    error, partial = typed(outcome)
    assert isinstance(error, rxstream.IncompleteStreamError) or not outcome.items
    assert partial.text == "Hello there! I" and not partial.complete and partial.finish_reason is None


def test_an_empty_finish_reason_then_a_real_one_and_done(chain: Chain) -> None:
    events = [chat(delta("Hi", "")), chat(delta("", "stop")), SSEEvent("[DONE]")]
    (response,) = run(chain(rxstream.from_frames(events))).items
    assert response.complete and response.finish_reason == "stop" and response.text == "Hi"


@pytest.mark.parametrize("reason", [1, True, {"a": 1}, ["stop"]])
def test_a_finish_reason_that_is_not_a_string_is_a_frame_error(chain: Chain, reason: object) -> None:
    event = SSEEvent(
        orjson.dumps({"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": reason}]}).decode()
    )
    error, _ = typed(run(chain(rxstream.from_frames([chat(delta("a")), event]))))
    assert isinstance(error, rxstream.FrameError) and "finish_reason" in error.reason


@pytest.mark.parametrize("reason", [1, False, ["end_turn"]])
def test_a_stop_reason_that_is_not_a_string_is_a_frame_error(chain: Chain, reason: object) -> None:
    events = [
        anthropic("message_start", message={"id": "msg_1", "usage": {"input_tokens": 1, "output_tokens": 1}}),
        anthropic("message_delta", delta={"stop_reason": reason}, usage={"output_tokens": 2}),
        anthropic("message_stop"),
    ]
    error, _ = typed(run(chain(rxstream.from_frames(events))))
    assert isinstance(error, rxstream.FrameError) and "stop_reason" in error.reason


# openai-python raises APIError for an event whose data holds "error" (src/openai/_streaming.py,
# Stream.__stream__: `if is_mapping(data) and data.get("error")`).
def test_openai_error_event_is_the_servers_failure_report(chain: Chain) -> None:
    error_event = SSEEvent(
        orjson.dumps(
            {"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": "boom"}}
        ).decode()
    )
    error, partial = typed(run(chain(rxstream.from_frames([chat(delta("Par")), chat(delta("tial")), error_event]))))
    assert isinstance(error, rxstream.ResponseFailedError)
    assert (error.code, error.error_type, error.server_message) == ("boom", "server_error", "The server had an error")
    assert partial.text == "Partial" and not partial.complete


# OpenRouter, "Handling Errors During Streaming" (https://openrouter.ai/docs/api-reference/streaming):
# an error after tokens were sent is an event with a top-level error object and finish_reason "error".
def test_openrouter_mid_stream_error_with_finish_reason_error(chain: Chain) -> None:
    failure = chat(
        delta("", "error"), error={"code": 502, "message": "Provider disconnected unexpectedly"}, provider="openai"
    )
    error, partial = typed(run(chain(rxstream.from_frames([chat(delta("Tallest ")), failure]))))
    assert isinstance(error, rxstream.ResponseFailedError)
    assert (error.code, error.server_message) == ("502", "Provider disconnected unexpectedly")
    assert partial.text == "Tallest " and not partial.complete


def test_finish_reason_error_without_an_error_object_is_a_failure_too(chain: Chain) -> None:
    error, partial = typed(run(chain(rxstream.from_frames([chat(delta("a")), chat(delta("", "error"))]))))
    assert isinstance(error, rxstream.ResponseFailedError) and partial.text == "a"


# Anthropic, "Error events" (https://docs.anthropic.com/en/docs/build-with-claude/streaming#error-events):
# `event: error` with {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
# sent before any content or after some.
@pytest.mark.parametrize("words", [(), ("Hello", " world")])
@pytest.mark.parametrize("kind", ["overloaded_error", "api_error"])
def test_anthropic_error_event_before_or_after_text(chain: Chain, words: tuple[str, ...], kind: str) -> None:
    events = [
        anthropic("message_start", message={"id": "msg_1", "usage": {"input_tokens": 3, "output_tokens": 1}}),
        anthropic("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        *(anthropic("content_block_delta", index=0, delta={"type": "text_delta", "text": word}) for word in words),
        anthropic("error", error={"type": kind, "message": "Overloaded"}),
    ]
    error, partial = typed(run(chain(rxstream.from_frames(events))))
    assert isinstance(error, rxstream.ResponseFailedError)
    assert (error.error_type, error.code, error.server_message) == (kind, None, "Overloaded")
    assert kind in str(error)
    assert partial.text == "".join(words) and not partial.complete


def test_chat_completion_id_is_the_response_id(chain: Chain) -> None:
    events = [chat(delta("Hi")), chat(delta("", "stop")), SSEEvent("[DONE]")]
    (response,) = run(chain(rxstream.from_frames(events))).items
    assert response.id == "chatcmpl-9"


def test_anthropic_message_id_is_the_response_id(chain: Chain) -> None:
    events = [
        anthropic("message_start", message={"id": "msg_01X", "usage": {"input_tokens": 3, "output_tokens": 1}}),
        anthropic("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 2}),
        anthropic("message_stop"),
    ]
    (response,) = run(chain(rxstream.from_frames(events))).items
    assert response.id == "msg_01X"


# Anthropic's web search tool, streamed (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool,
# "Streaming"): a server_tool_use block with its input_json_delta, then a web_search_tool_result block,
# then text; the anthropic SDK keeps them as blocks of their own types, apart from tool_use.
def web_search_events() -> list[dict[str, Any]]:
    result = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
        "content": [
            {"type": "web_search_result", "title": "Q", "url": "https://example.com/q", "encrypted_content": "E"}
        ],
    }
    return [
        {
            "type": "message_start",
            "message": {
                "id": "msg_01G",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 2679, "output_tokens": 3},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "I'll search."}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "server_tool_use",
                "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
                "name": "web_search",
                "input": {},
            },
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"query'}},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '": "quantum 2025"}'},
        },
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": result},
        {"type": "content_block_stop", "index": 2},
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {"type": "tool_use", "id": "toolu_01A", "name": "save_note", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 3,
            "delta": {"type": "input_json_delta", "partial_json": '{"text": "Q"}'},
        },
        {"type": "content_block_stop", "index": 3},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 510},
        },
        {"type": "message_stop"},
    ]


def test_anthropic_server_tool_use_is_kept_apart_from_the_clients_tool_calls(chain: Chain) -> None:
    events = web_search_events()
    message: Any = None
    buffers: dict[int, bytes] = {}
    for event in events:
        message = accumulate_event(event=event, current_snapshot=message, json_bufs=buffers)  # type: ignore[arg-type]

    (response,) = run(chain(rxstream.from_frames([anthropic(**event) for event in events]))).items
    assert [(call.index, call.id, call.name, call.parsed()) for call in response.tool_calls] == [
        (index, block.id, block.name, block.input)
        for index, block in enumerate(message.content)
        if block.type == "tool_use"
    ]
    assert [(call.index, call.id, call.name, call.parsed()) for call in response.server_tool_calls] == [
        (index, block.id, block.name, block.input)
        for index, block in enumerate(message.content)
        if block.type == "server_tool_use"
    ]
    assert response.text == "".join(block.text for block in message.content if block.type == "text")
    assert response.tool_calls and response.server_tool_calls and response.complete
