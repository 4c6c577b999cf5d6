"""Conversations: the next request built from a session's saved turns, for each API, checked
against the SDKs' request types and against what a raw peer receives on turns 2 and 3."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from anthropic.types import ContentBlockParam, MessageParam
from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import ResponseInputItemParam
from pydantic import TypeAdapter

import rxstream
from rxstream.testing import FunctionCall, Message, response_events, sse_body

from .support import loopback, read_request

WEATHER = '{"city": "Paris"}'


def sse(events: Sequence[dict[str, Any]], *, named: bool) -> bytes:
    return b"".join(
        (b"event: " + event["type"].encode() + b"\n" if named else b"") + b"data: " + orjson.dumps(event) + b"\n\n"
        for event in events
    )


@asynccontextmanager
async def scripted_peer(bodies: Sequence[bytes], received: list[dict[str, Any]]) -> AsyncIterator[str]:
    """A raw HTTP peer answering its n-th request with ``bodies[n]`` (an SSE body), keeping each request body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, _, body = await read_request(reader)
        received.append(orjson.loads(body))
        answer = bodies[len(received) - 1]
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(answer))
        writer.write(answer)
        await writer.drain()

    async with loopback(handle) as url:
        yield url


# --- the bodies the peers send --------------------------------------------------------------


def chat_events(delta: dict[str, Any], finish: str) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "deepseek-reasoner"}
    return [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
    ]


def chat_body(delta: dict[str, Any], finish: str) -> bytes:
    return sse(chat_events(delta, finish), named=False) + b"data: [DONE]\n\n"


def anthropic_body(message_id: str, blocks: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]], stop: str) -> bytes:
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        }
    ]
    for index, (start, deltas) in enumerate(blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 9}}
    )
    events.append({"type": "message_stop"})
    return sse(events, named=True)


THINKING_1 = (
    {"type": "thinking", "thinking": "", "signature": ""},
    [
        {"type": "thinking_delta", "thinking": "The user wants "},
        {"type": "thinking_delta", "thinking": "the weather."},
        {"type": "signature_delta", "signature": "EqQBCgIYAhIM1"},
    ],
)
REDACTED: tuple[dict[str, Any], list[dict[str, Any]]] = (
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
    [],
)
TOOL_USE = (
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
    [
        {"type": "input_json_delta", "partial_json": '{"city": '},
        {"type": "input_json_delta", "partial_json": '"Paris"}'},
    ],
)
THINKING_2 = (
    {"type": "thinking", "thinking": "", "signature": ""},
    [
        {"type": "thinking_delta", "thinking": "18 degrees."},
        {"type": "signature_delta", "signature": "EqQBCgIYAhIM2"},
    ],
)
TEXT_2 = ({"type": "text", "text": ""}, [{"type": "text_delta", "text": "It is 18 °C in Paris."}])


# --- the conversations ----------------------------------------------------------------------


async def converse(
    tmp_path: Path,
    bodies: Sequence[bytes],
    call: Callable[..., Any],
    first: dict[str, Any],
    second: Callable[[list[rxstream.Turn]], dict[str, Any]],
    third: Callable[[list[rxstream.Turn]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Three turns: each request built from the turns saved so far (reopening the store each time),
    each saved with its request by the call's ``store=``."""
    received: list[dict[str, Any]] = []
    async with scripted_peer(bodies, received) as url:
        for build in (lambda _: first, second, third):
            async with rxstream.SQLiteStore(tmp_path / "chat.db") as store:
                turns = await store.history("s")
                request = build(turns)
                await asyncio.wait_for(call(url, request=request, store=store, session_id="s"), 10)
    return received


@pytest.mark.network
async def test_chat_completions_send_back_the_tool_call_and_its_result_without_reasoning(tmp_path: Path) -> None:
    # DeepSeek: reasoning_content must not be sent back in the messages, or the API answers 400
    # (https://api-docs.deepseek.com/guides/reasoning_model, "Multi-round Conversation").
    # The assistant message with tool_calls, then a role "tool" message per call
    # (https://platform.openai.com/docs/guides/function-calling).
    call_delta = {
        "reasoning_content": "Look it up.",
        "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": WEATHER}}
        ],
    }
    bodies = [
        chat_body(call_delta, "tool_calls"),
        chat_body({"reasoning_content": "18.", "content": "It is 18 °C."}, "stop"),
        chat_body({"content": "You're welcome."}, "stop"),
    ]
    user = {"role": "user", "content": "Weather in Paris?"}
    received = await converse(
        tmp_path,
        bodies,
        rxstream.stream_sse,
        rxstream.chat_request("deepseek-reasoner", "Weather in Paris?"),
        lambda turns: rxstream.chat_request(
            "deepseek-reasoner", [*rxstream.chat_messages(turns), rxstream.chat_tool_result("call_1", "18 °C")]
        ),
        lambda turns: rxstream.chat_request(
            "deepseek-reasoner", [*rxstream.chat_messages(turns), {"role": "user", "content": "Thanks"}]
        ),
    )
    assistant_call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": WEATHER}}],
    }
    tool = {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"}
    options = {"model": "deepseek-reasoner", "stream": True, "stream_options": {"include_usage": True}}
    assert received[1] == {**options, "messages": [user, assistant_call, tool]}
    assert received[2] == {
        **options,
        "messages": [
            user,
            assistant_call,
            tool,
            {"role": "assistant", "content": "It is 18 °C."},
            {"role": "user", "content": "Thanks"},
        ],
    }
    validate(ChatCompletionMessageParam, received[2]["messages"])
    # rxstream history shows both sides: what each turn sent after the last answer, then the answer
    shown = subprocess.run(
        [sys.executable, "-m", "rxstream", "history", "s", "--db", str(tmp_path / "chat.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1:3] == ["> [user] Weather in Paris?", "[reasoning] Look it up."]
    assert "> [tool] 18 °C" in lines and "> [user] Thanks" in lines
    assert lines.index("> [tool] 18 °C") < lines.index("It is 18 °C.") < lines.index("> [user] Thanks")


def following(turns: list[rxstream.Turn], new: dict[str, Any]) -> dict[str, Any]:
    """The last request's model and parameters, with the messages so far and ``new``."""
    assert turns[-1].request is not None
    return {**turns[-1].request, "messages": [*rxstream.anthropic_messages(turns), new]}


@pytest.mark.network
async def test_anthropic_sends_back_each_thinking_block_with_its_signature_in_order(tmp_path: Path) -> None:
    # In a tool-use loop the thinking blocks (each with its signature) and redacted_thinking blocks
    # must be sent back unmodified, before the tool_use, then a tool_result in a user message
    # (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks).
    bodies = [
        anthropic_body("msg_1", [THINKING_1, REDACTED, TOOL_USE], "tool_use"),
        anthropic_body("msg_2", [THINKING_2, TEXT_2], "end_turn"),
        anthropic_body("msg_3", [({"type": "text", "text": "Welcome."}, [])], "end_turn"),
    ]
    model = "claude-sonnet-4-5"
    received = await converse(
        tmp_path,
        bodies,
        rxstream.stream_sse,
        rxstream.anthropic_request(
            model, "Weather in Paris?", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}
        ),
        lambda turns: following(turns, rxstream.anthropic_tool_result("toolu_01", "18 °C")),
        lambda turns: following(turns, {"role": "user", "content": "Thanks"}),
    )
    user = {"role": "user", "content": "Weather in Paris?"}
    assistant_1 = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCgIYAhIM1"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 °C"}]}
    assistant_2 = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "18 degrees.", "signature": "EqQBCgIYAhIM2"},
            {"type": "text", "text": "It is 18 °C in Paris."},
        ],
    }
    options = {
        "model": model,
        "max_tokens": 2048,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    assert received[1] == {**options, "messages": [user, assistant_1, result]}
    assert received[2] == {
        **options,
        "messages": [user, assistant_1, result, assistant_2, {"role": "user", "content": "Thanks"}],
    }
    validate(MessageParam, received[2]["messages"])


@pytest.mark.network
@pytest.mark.parametrize("stateful", [True, False], ids=["previous_response_id", "store false"])
async def test_responses_continue_by_previous_response_id_or_by_the_output_items(
    tmp_path: Path, stateful: bool
) -> None:
    # Either previous_response_id and only the new input, or (store: false) the earlier input and
    # output items again (https://platform.openai.com/docs/guides/conversation-state); a function
    # call's result is a function_call_output item (https://platform.openai.com/docs/guides/function-calling).
    bodies = [
        sse_body(response_events([FunctionCall("call_1", "get_weather", [WEATHER])], response_id="resp_1")),
        sse_body(response_events([Message(["It is 18 °C."])], response_id="resp_2")),
        sse_body(response_events([Message(["Welcome."])], response_id="resp_3")),
    ]
    extra = {} if stateful else {"store": False}

    def next_request(turns: list[rxstream.Turn], new: list[dict[str, Any]]) -> dict[str, Any]:
        fields = rxstream.responses_continuation(turns, new, stateful=stateful)
        return rxstream.responses_request("gpt-5", fields.pop("input"), **extra, **fields)

    output = rxstream.responses_tool_result("call_1", "18 °C")
    received = await converse(
        tmp_path,
        bodies,
        rxstream.stream_responses,
        rxstream.responses_request("gpt-5", "Weather in Paris?", **extra),
        lambda turns: next_request(turns, [output]),
        lambda turns: next_request(turns, [{"role": "user", "content": "Thanks"}]),
    )
    thanks = {"role": "user", "content": "Thanks"}
    if stateful:
        assert received[1] == {"model": "gpt-5", "stream": True, "previous_response_id": "resp_1", "input": [output]}
        assert received[2] == {"model": "gpt-5", "stream": True, "previous_response_id": "resp_2", "input": [thanks]}
    else:
        call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": WEATHER}
        user = {"role": "user", "content": "Weather in Paris?"}
        assert received[1] == {"model": "gpt-5", "stream": True, "store": False, "input": [user, call, output]}
        assert received[2] == {
            "model": "gpt-5",
            "stream": True,
            "store": False,
            "input": [user, call, output, {"role": "assistant", "content": "It is 18 °C."}, thanks],
        }
    validate(ResponseInputItemParam, received[2]["input"])


def validate(kind: Any, items: list[dict[str, Any]]) -> None:
    """Each item is one of the SDK's request types. pydantic checks a TypedDict's required keys and
    literals, but leaves its Iterable fields (content blocks, tool calls) unchecked until iterated:
    those are iterated here, and Anthropic's content blocks checked one by one (a whole
    MessageParam's iterated blocks make pydantic-core panic)."""
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    blocks: TypeAdapter[Any] = TypeAdapter(ContentBlockParam)
    for item in items:
        validated = adapter.validate_python(item)
        if kind is MessageParam:
            for block in item["content"] if isinstance(item["content"], list) else ():
                blocks.validate_python(block)
        else:
            for value in validated.values():
                if not isinstance(value, str | dict | list | int | float | bool | None):
                    list(value)  # a ValidatorIterator: validates its items as it goes


def test_sdk_types_refuse_what_an_api_refuses() -> None:
    """The validation itself has teeth: an assistant tool call without its id, a thinking block without its signature."""
    with pytest.raises(ValueError):
        validate(
            ChatCompletionMessageParam,
            [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": ""}}]}],
        )
    with pytest.raises(ValueError):
        validate(MessageParam, [{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}])
