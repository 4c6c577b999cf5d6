"""What real providers put in their streams, in memory: parse_sse fused (sse_pipeline) and piped alike.

Each stream replays a provider's documented (or reported) behaviour; the comment above each
test cites where. Over HTTP the same bodies go through from_sse, whose tests live beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from reactivex import Observable

import rxstream
from rxstream import operators as rxo
from rxstream.protocol._sse import SSEEvent

from .responses_events import FunctionCall, Message, encode, response_events
from .support import FIXTURES, Outcome, decode, run

Chain = Callable[[Observable[Any]], Observable[rxstream.Response]]


def piped_sse(source: Observable[Any], choice: int = 0) -> Observable[rxstream.Response]:
    return source.pipe(
        rxo.parse_sse(choice), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
    )


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


# --- OpenAI Responses: the final events are authoritative where deltas are missing ----------

RESPONSES_CHAINS: dict[str, Chain] = {
    "fused": rxstream.responses_pipeline(),
    "piped": lambda source: source.pipe(
        rxo.parse_responses(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
    ),
}
CALL_AND_TEXT = (Message(("Hel", "lo")), FunctionCall("call_a", "get_weather", ('{"ci', 'ty": "Paris"}')))


def without(*kinds: str) -> list[bytes]:
    """The response's events without those of ``kinds``, numbered again so that no gap is left."""
    kept = [event for event in response_events(CALL_AND_TEXT) if event["type"] not in kinds]
    return encode([{**event, "sequence_number": number} for number, event in enumerate(kept)])


# gpt-5.3-codex-spark sends a call's arguments only in response.function_call_arguments.done, no delta
# (https://github.com/BerriAI/litellm/issues/27144, https://github.com/earendil-works/pi/issues/2745);
# the API reference gives the whole value in each *.done event and in response.completed's output
# (https://platform.openai.com/docs/api-reference/responses-streaming).
@pytest.mark.parametrize("chain", RESPONSES_CHAINS)
@pytest.mark.parametrize(
    "dropped",
    [
        ("response.function_call_arguments.delta",),
        ("response.function_call_arguments.delta", "response.function_call_arguments.done"),
        ("response.output_text.delta",),
        ("response.output_text.delta", "response.output_text.done", "response.output_item.done"),
        (
            "response.output_text.delta",
            "response.function_call_arguments.delta",
            "response.output_text.done",
            "response.function_call_arguments.done",
            "response.output_item.done",
        ),
    ],
)
def test_responses_final_events_give_what_no_delta_did(chain: str, dropped: tuple[str, ...]) -> None:
    (response,) = run(RESPONSES_CHAINS[chain](rxstream.from_frames(without(*dropped)))).items
    assert response.complete and response.text == "Hello"
    assert response.tool_calls == (rxstream.ToolCall(1, "call_a", "get_weather", '{"city": "Paris"}'),)


@pytest.mark.parametrize("chain", RESPONSES_CHAINS)
@pytest.mark.parametrize("kind", ["response.output_text.delta", "response.function_call_arguments.delta"])
def test_deltas_that_disagree_with_the_final_value_are_reported(chain: str, kind: str) -> None:
    events = response_events(CALL_AND_TEXT)
    delta = next(event for event in events if event["type"] == kind)
    delta["delta"] = delta["delta"][:-1]  # a character lost on the way
    error, partial = typed(run(RESPONSES_CHAINS[chain](rxstream.from_frames(encode(events)))))
    assert isinstance(error, rxstream.FrameError) and "the deltas carried" in error.reason
    assert not partial.complete


# --- usage under one set of names (issue 19), the raw dict kept ---------------------------


# OpenAI's usage object (https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage),
# sent in include_usage's last chunk, whose choices are [] (https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options);
# DeepSeek's cache counts (https://api-docs.deepseek.com/guides/kv_cache).
@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "prompt_tokens": 120,
                "completion_tokens": 40,
                "total_tokens": 160,
                "prompt_tokens_details": {"cached_tokens": 100},
                "completion_tokens_details": {"reasoning_tokens": 30},
            },
            (120, 40, 160, 30, 100),
        ),
        (
            {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12, "prompt_cache_hit_tokens": 8},
            (9, 3, 12, None, 8),
        ),
        ({"prompt_tokens": 9, "completion_tokens": 3}, (9, 3, 12, None, None)),
    ],
)
def test_chat_completion_usage_by_common_names_with_the_raw_dict_kept(
    chain: Chain, usage: dict[str, Any], expected: tuple[int | None, ...]
) -> None:
    events = [chat(delta("Hi")), chat(delta("", "stop")), chat(usage=usage), SSEEvent("[DONE]")]
    (response,) = run(chain(rxstream.from_frames(events))).items
    found = response.stats.usage
    assert isinstance(found, rxstream.Usage) and found == usage  # the raw dict, as sent
    names = (found.input_tokens, found.output_tokens, found.total_tokens, found.reasoning_tokens, found.cached_tokens)
    assert names == expected


# Anthropic counts cache reads and writes apart from input_tokens
# (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance).
def test_anthropic_usage_counts_cached_input_as_input(chain: Chain) -> None:
    start_usage = {
        "input_tokens": 5,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 20,
        "output_tokens": 1,
    }
    events = [
        anthropic("message_start", message={"id": "msg_1", "usage": start_usage}),
        anthropic("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 42}),
        anthropic("message_stop"),
    ]
    (response,) = run(chain(rxstream.from_frames(events))).items
    usage = response.stats.usage
    assert usage is not None and usage["input_tokens"] == 5 and usage["output_tokens"] == 42
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens, usage.cached_tokens) == (1025, 42, 1067, 1000)


# The Responses API's usage (https://platform.openai.com/docs/api-reference/responses/object#responses/object-usage).
def test_responses_usage_by_common_names() -> None:
    usage = {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 8},
        "total_tokens": 42,
    }
    (response,) = run(
        rxstream.from_frames(encode(response_events(CALL_AND_TEXT, usage=usage))).pipe(rxstream.responses_pipeline())
    ).items
    found = response.stats.usage
    assert found == usage and found is not None
    assert (
        found.input_tokens,
        found.output_tokens,
        found.total_tokens,
        found.reasoning_tokens,
        found.cached_tokens,
    ) == (
        12,
        30,
        42,
        8,
        4,
    )


def test_stats_given_a_plain_usage_dict_keep_it_as_usage_and_serialize_as_a_dict() -> None:
    stats = rxstream.Stats(usage={"prompt_tokens": 2, "completion_tokens": 1})  # type: ignore[arg-type]  # as a store reads it back
    assert isinstance(stats.usage, rxstream.Usage) and stats.usage.total_tokens == 3
    assert orjson.loads(orjson.dumps(asdict(stats)))["usage"] == {"prompt_tokens": 2, "completion_tokens": 1}


# --- §8: what servers we did not write send, in memory ----------------------------------------


def through(chain: Chain, events: list[SSEEvent]) -> rxstream.Response:
    outcome = run(chain(rxstream.from_frames(events)))
    assert outcome.error is None, outcome.error
    (response,) = outcome.items
    assert isinstance(response, rxstream.Response)
    return response


# A recorded OpenAI stream (include_usage: its last chunk's choices are []), read a byte at a time,
# and with `data:` written without its space (the WHATWG format takes both), gives the same response.
@pytest.mark.parametrize("fixture", ["chat-completions-plain-text.sse", "chat-completions-parallel-tool-calls.sse"])
def test_a_recorded_stream_read_a_byte_at_a_time_and_without_spaces_is_the_same(chain: Chain, fixture: str) -> None:
    body = (FIXTURES / "openai-python" / fixture).read_bytes()
    whole = through(chain, decode(body))
    assert whole.complete and whole.stats.usage is not None and whole.id is not None
    for variant in (body, body.replace(b"data: ", b"data:")):
        response = through(chain, decode(variant, range(1, len(variant))))
        assert (response.text, response.tool_calls, response.stats.usage, response.id) == (
            whole.text,
            whole.tool_calls,
            whole.stats.usage,
            whole.id,
        )


# n > 1: the choices' chunks interleaved in one stream, each read by its index, as the openai SDK
# accumulates them (its recorded stream: tests/fixtures/real-streams/openai-python/).
@pytest.mark.parametrize("way", ["fused", "piped"])
def test_interleaved_choices_are_each_the_sdks(way: str) -> None:
    events = decode((FIXTURES / "openai-python" / "chat-completions-n3-interleaved-choices.sse").read_bytes())
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for event in events:
        if event.data != "[DONE]":
            state.handle_chunk(ChatCompletionChunk.model_validate_json(event.data))
    for sdk_choice in state.current_completion_snapshot.choices:
        response = through(
            partial(piped_sse, choice=sdk_choice.index)
            if way == "piped"
            else rxstream.sse_pipeline(choice=sdk_choice.index),
            events,
        )
        assert (response.text, response.finish_reason) == (sdk_choice.message.content, sdk_choice.finish_reason)


# Azure OpenAI's content filter annotates the stream: a first chunk with choices [] and
# prompt_filter_results, and, with the asynchronous filter, chunks whose choice has
# content_filter_results or content_filter_offsets and no delta
# (https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter#streaming).
def test_azure_content_filter_annotations_carry_no_text_and_end_nothing(chain: Chain) -> None:
    safe = {"hate": {"filtered": False, "severity": "safe"}}
    pieces = ["Once", " upon", " a time"]
    events = [
        SSEEvent(
            orjson.dumps(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": safe}],
                }
            ).decode()
        ),
        *(
            chat({"index": 0, "delta": {"content": piece}, "finish_reason": None, "content_filter_results": safe})
            for piece in pieces
        ),
        chat(
            {
                "index": 0,
                "finish_reason": None,
                "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 14},
                "content_filter_results": safe,
            }
        ),
        chat(delta("", "stop")),
        chat(
            {
                "index": 0,
                "finish_reason": None,
                "content_filter_offsets": {"check_offset": 14, "start_offset": 14, "end_offset": 20},
                "content_filter_results": safe,
            }
        ),
        SSEEvent("[DONE]"),
    ]
    response = through(chain, events)
    assert response.complete and response.text == "".join(pieces) and response.finish_reason == "stop"
    assert response.id == "chatcmpl-9"  # the annotation's empty id is no id


# Anthropic's extended thinking streamed (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#streaming-thinking):
# thinking_delta then signature_delta, a redacted_thinking block (its data encrypted, not text), pings between.
def test_thinking_signatures_redacted_thinking_and_pings_as_the_anthropic_sdk_has_them(chain: Chain) -> None:
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_T",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1},
            },
        },
        {"type": "ping"},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me add "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "2 and 2."}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
        },
        {"type": "content_block_stop", "index": 1},
        {"type": "ping"},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "It is 4."}},
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
        {"type": "message_stop"},
    ]
    message: Any = None
    buffers: dict[int, bytes] = {}
    for event in events:
        message = accumulate_event(event=event, current_snapshot=message, json_bufs=buffers)  # type: ignore[arg-type]
    response = through(chain, [anthropic(**event) for event in events])
    assert response.text == "".join(block.text for block in message.content if block.type == "text")
    assert response.reasoning == "".join(block.thinking for block in message.content if block.type == "thinking")
    assert response.reasoning_signatures == tuple(
        block.signature for block in message.content if block.type == "thinking"
    )
    assert [part.kind for part in response.parts] == ["reasoning", "text"]
    assert response.finish_reason == message.stop_reason and response.complete and response.id == message.id


# A Responses-compatible server nesting an OpenAI error object in its error event
# ({"type": "error", "error": {"type", "code", "message"}}, the shape of the chat API's error body).
@pytest.mark.parametrize("chain", RESPONSES_CHAINS)
def test_a_nested_responses_error_keeps_its_type(chain: str) -> None:
    events = response_events(CALL_AND_TEXT)[:4]
    error_event = {
        "type": "error",
        "sequence_number": 4,
        "error": {"type": "server_error", "code": "overloaded", "message": "Try again."},
    }
    error, partial = typed(run(RESPONSES_CHAINS[chain](rxstream.from_frames(encode([*events, error_event])))))
    assert isinstance(error, rxstream.ResponseFailedError)
    assert (error.error_type, error.code, error.server_message) == ("server_error", "overloaded", "Try again.")
    assert not partial.complete
