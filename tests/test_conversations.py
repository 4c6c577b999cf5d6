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
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import ContentBlockParam, MessageParam
from anthropic.types.message_create_params import MessageCreateParamsStreaming
from hypothesis import assume, given, settings
from openai.types.chat import ChatCompletionMessageParam
from openai.types.chat.completion_create_params import CompletionCreateParamsStreaming
from openai.types.responses import ResponseInputItemParam
from openai.types.responses.response_create_params import ResponseCreateParamsStreaming
from pydantic import TypeAdapter

import rxstream
from rxstream.testing import (
    FunctionCall,
    Message,
    Reasoning,
    Stream,
    anthropic_streams,
    chat_streams,
    outcome_of,
    response_events,
    responses_streams,
    sse_body,
)

from .support import loopback, read_request
from .test_differential import through_rxstream

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
# With interleaved thinking (beta interleaved-thinking-2025-05-14) Claude thinks between tool calls:
# https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#interleaved-thinking
BETWEEN = (
    {"type": "thinking", "thinking": "", "signature": ""},
    [
        {"type": "thinking_delta", "thinking": "And the time there."},
        {"type": "signature_delta", "signature": "EqQBCgIYAhIM3"},
    ],
)
TIME_USE = (
    {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
    [{"type": "input_json_delta", "partial_json": '{"tz": "Europe/Paris"}'}],
)


# --- the conversations ----------------------------------------------------------------------

# The body of each API's streamed request, as its SDK types it: every key a request may hold.
PARAMS: dict[str, Any] = {
    "chat": CompletionCreateParamsStreaming,
    "anthropic": MessageCreateParamsStreaming,
    "responses": ResponseCreateParamsStreaming,
}


async def converse(
    tmp_path: Path,
    bodies: Sequence[bytes],
    call: Callable[..., Any],
    first: dict[str, Any],
    results: Sequence[rxstream.ToolResult],
    second: Callable[[list[rxstream.Turn]], dict[str, Any]],
    third: Callable[[list[rxstream.Turn]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Three turns of an agent loop, stopped and resumed from the store between every step (the
    store reopened each time): each request built from the turns saved so far and saved with its
    answer by the call's ``store=``; after the first answer, its tool calls' ``results`` saved
    as a turn of their own."""
    received: list[dict[str, Any]] = []
    async with scripted_peer(bodies, received) as url:
        for build in (lambda _: first, second, third):
            async with rxstream.SQLiteStore(tmp_path / "chat.db") as store:
                turns = await store.history("s")
                if turns and rxstream.unanswered_tool_calls(turns):  # resumed after the model asked for tools
                    assert [call.id for call in rxstream.unanswered_tool_calls(turns)] == [r.call_id for r in results]
                    await store.save_tool_results("s", results)
            async with rxstream.SQLiteStore(tmp_path / "chat.db") as store:
                turns = await store.history("s")
                assert rxstream.unanswered_tool_calls(turns) == ()
                request = build(turns)
                await asyncio.wait_for(call(url, request=request, store=store, session_id="s"), 10)
    return received


def history_lines(tmp_path: Path) -> list[str]:
    """``rxstream history s`` over the conversation's database, as a subprocess."""
    shown = subprocess.run(
        [sys.executable, "-m", "rxstream", "history", "s", "--db", str(tmp_path / "chat.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.splitlines()


@pytest.mark.network
@pytest.mark.parametrize("keep_reasoning", [False, True], ids=["DeepSeek", "keep_reasoning"])
async def test_chat_completions_send_back_the_tool_call_and_its_result_without_reasoning(
    tmp_path: Path, keep_reasoning: bool
) -> None:
    # DeepSeek: reasoning_content must not be sent back in the messages, or the API answers 400
    # (https://api-docs.deepseek.com/guides/reasoning_model, "Multi-round Conversation");
    # keep_reasoning=True sends it, for servers that want it back. The assistant message with
    # tool_calls, then a role "tool" message per call (https://platform.openai.com/docs/guides/function-calling).
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

    def messages(turns: list[rxstream.Turn]) -> list[dict[str, Any]]:
        return rxstream.chat_messages(turns, keep_reasoning=keep_reasoning)

    received = await converse(
        tmp_path,
        bodies,
        rxstream.stream_sse,
        rxstream.chat_request("deepseek-reasoner", "Weather in Paris?"),
        [rxstream.ToolResult("call_1", "18 °C")],
        lambda turns: rxstream.chat_request("deepseek-reasoner", messages(turns)),
        lambda turns: rxstream.chat_request(
            "deepseek-reasoner", [*messages(turns), {"role": "user", "content": "Thanks"}]
        ),
    )
    reasoning_1 = {"reasoning_content": "Look it up."} if keep_reasoning else {}
    reasoning_2 = {"reasoning_content": "18."} if keep_reasoning else {}
    assistant_call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": WEATHER}}],
        **reasoning_1,
    }
    tool = {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"}
    options = {"model": "deepseek-reasoner", "stream": True, "stream_options": {"include_usage": True}}
    assert received[0] == {**options, "messages": [user]}
    assert received[1] == {**options, "messages": [user, assistant_call, tool]}
    assert received[2] == {
        **options,
        "messages": [
            user,
            assistant_call,
            tool,
            {"role": "assistant", "content": "It is 18 °C.", **reasoning_2},
            {"role": "user", "content": "Thanks"},
        ],
    }
    for body in received:
        validate_body("chat", body)
    # rxstream history shows both sides: what each turn sent after the last answer, then the answer
    lines = history_lines(tmp_path)
    assert lines[1:4] == [
        "> [user] Weather in Paris?",
        "[reasoning] Look it up.",
        f"[tool call 0] get_weather call_1 {WEATHER}",
    ]
    assert lines[4].startswith("--- turn 2 · ") and lines[4].endswith(" · tool results")
    assert lines[5] == "> [tool result call_1] 18 °C" and "> [user] Thanks" in lines
    assert not any(line.startswith("> [tool]") for line in lines)  # turn 3 sent them again: shown once
    assert lines.index("> [tool result call_1] 18 °C") < lines.index("It is 18 °C.") < lines.index("> [user] Thanks")


def following(turns: list[rxstream.Turn], new: dict[str, Any] | None = None) -> dict[str, Any]:
    """The last request's model and parameters, with the messages so far (and ``new``)."""
    requests = [turn.request for turn in turns if turn.request is not None]
    return {**requests[-1], "messages": [*rxstream.anthropic_messages(turns), *([new] if new else [])]}


@pytest.mark.network
async def test_anthropic_sends_back_each_thinking_block_with_its_signature_in_order(tmp_path: Path) -> None:
    # In a tool-use loop the thinking blocks (each with its signature) and redacted_thinking blocks
    # must be sent back unmodified and in the order they came ("you cannot rearrange or modify the
    # sequence of these blocks"), the interleaved thinking between the tool uses too, then all the
    # tool_results in one user message
    # (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks,
    # https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use).
    bodies = [
        anthropic_body("msg_1", [THINKING_1, REDACTED, TOOL_USE, BETWEEN, TIME_USE], "tool_use"),
        anthropic_body("msg_2", [THINKING_2, TEXT_2], "end_turn"),
        anthropic_body("msg_3", [({"type": "text", "text": "Welcome."}, [])], "end_turn"),
    ]
    model = "claude-sonnet-4-5"
    results = [rxstream.ToolResult("toolu_01", "18 °C"), rxstream.ToolResult("toolu_02", "no clock", is_error=True)]
    received = await converse(
        tmp_path,
        bodies,
        rxstream.stream_sse,
        rxstream.anthropic_request(
            model, "Weather in Paris?", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}
        ),
        results,
        following,
        lambda turns: following(turns, {"role": "user", "content": "Thanks"}),
    )
    user = {"role": "user", "content": "Weather in Paris?"}
    assistant_1 = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCgIYAhIM1"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "thinking", "thinking": "And the time there.", "signature": "EqQBCgIYAhIM3"},
            {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {"tz": "Europe/Paris"}},
        ],
    }
    result = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 °C"},
            {"type": "tool_result", "tool_use_id": "toolu_02", "content": "no clock", "is_error": True},
        ],
    }
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
    assert received[0] == {**options, "messages": [user]}
    assert received[1] == {**options, "messages": [user, assistant_1, result]}
    assert received[2] == {
        **options,
        "messages": [user, assistant_1, result, assistant_2, {"role": "user", "content": "Thanks"}],
    }
    for body in received:
        validate_body("anthropic", body)
    lines = history_lines(tmp_path)
    assert "> [tool result toolu_01] 18 °C" in lines and "> [tool result toolu_02 error] no clock" in lines
    after = lines.index("> [tool result toolu_02 error] no clock")
    # turn 3's request sent the results again: shown once, by the tool turn
    assert lines[after + 1].startswith("--- turn 3 · ") and lines[after + 2] == "[reasoning] 18 degrees."


@pytest.mark.network
@pytest.mark.parametrize("stateful", [True, False], ids=["previous_response_id", "store false"])
async def test_responses_continue_by_previous_response_id_or_by_the_output_items(
    tmp_path: Path, stateful: bool
) -> None:
    # Either previous_response_id and only the new input, or (store: false) the earlier input and
    # output items again (https://platform.openai.com/docs/guides/conversation-state); a function
    # call's result is a function_call_output item (https://platform.openai.com/docs/guides/function-calling).
    # A reasoning model's reasoning items go back whole, encrypted_content included, before the call
    # they led to (https://platform.openai.com/docs/guides/reasoning#keeping-reasoning-items-in-context).
    looked = Reasoning([["Paris: ", "look it up."]], encrypted_content="gAAAAB-first")
    answered = Reasoning([], encrypted_content="gAAAAB-second")  # no summary asked for: encrypted only
    bodies = [
        sse_body(response_events([looked, FunctionCall("call_1", "get_weather", [WEATHER])], response_id="resp_1")),
        sse_body(response_events([answered, Message(["It is 18 °C."])], response_id="resp_2")),
        sse_body(response_events([Message(["Welcome."])], response_id="resp_3")),
    ]
    extra = {} if stateful else {"store": False}

    def next_request(turns: list[rxstream.Turn], new: list[dict[str, Any]]) -> dict[str, Any]:
        fields = rxstream.responses_continuation(turns, new, stateful=stateful)
        return rxstream.responses_request("gpt-5", fields.pop("input"), **extra, **fields)

    received = await converse(
        tmp_path,
        bodies,
        rxstream.stream_responses,
        rxstream.responses_request("gpt-5", "Weather in Paris?", **extra),
        [rxstream.ToolResult("call_1", "18 °C")],
        lambda turns: next_request(turns, []),
        lambda turns: next_request(turns, [{"role": "user", "content": "Thanks"}]),
    )
    output = {"type": "function_call_output", "call_id": "call_1", "output": "18 °C"}
    thanks = {"role": "user", "content": "Thanks"}
    assert received[0] == {"model": "gpt-5", "stream": True, **extra, "input": "Weather in Paris?"}
    if stateful:
        assert received[1] == {"model": "gpt-5", "stream": True, "previous_response_id": "resp_1", "input": [output]}
        assert received[2] == {"model": "gpt-5", "stream": True, "previous_response_id": "resp_2", "input": [thanks]}
    else:
        call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": WEATHER}
        user = {"role": "user", "content": "Weather in Paris?"}
        first = {
            "type": "reasoning",
            "id": "item_0",
            "summary": [{"type": "summary_text", "text": "Paris: look it up."}],
            "encrypted_content": "gAAAAB-first",
        }
        second = {"type": "reasoning", "id": "item_0", "summary": [], "encrypted_content": "gAAAAB-second"}
        answer = {"role": "assistant", "content": "It is 18 °C."}
        assert received[1] == {"model": "gpt-5", "stream": True, "store": False, "input": [user, first, call, output]}
        assert received[2] == {
            "model": "gpt-5",
            "stream": True,
            "store": False,
            "input": [user, first, call, output, second, answer, thanks],
        }
    for body in received:
        validate_body("responses", body)


# --- the turns as each API takes them back, without a peer ----------------------------------


def turn(number: int, response: rxstream.Response, request: dict[str, Any] | None = None) -> rxstream.Turn:
    return rxstream.Turn("s", number, response, 0.0, request)


def tool_turn(number: int, *results: rxstream.ToolResult) -> rxstream.Turn:
    return rxstream.Turn("s", number, rxstream.Response("", True, 0), 0.0, None, results)


ASKED = {"model": "m", "messages": [{"role": "user", "content": "Weather in Paris?"}]}
CALL = rxstream.ToolCall(0, "call_1", "get_weather", WEATHER)


def test_tool_results_saved_as_a_turn_or_sent_in_the_request_give_the_same_messages() -> None:
    """A loop that saves its tools' results as a turn and one that sends them in the next request
    agree, for each API."""
    asked = turn(
        1, rxstream.Response("", True, 3, tool_calls=(CALL,), stats=rxstream.Stats(response_id="resp_1")), ASKED
    )
    saved = [asked, tool_turn(2, rxstream.ToolResult("call_1", "18 °C"))]
    assert rxstream.chat_messages(saved) == [
        *rxstream.chat_messages([asked]),
        rxstream.chat_tool_result("call_1", "18 °C"),
    ]
    assert rxstream.anthropic_messages(saved) == [
        *rxstream.anthropic_messages([asked]),
        rxstream.anthropic_tool_result("call_1", "18 °C"),
    ]
    output = rxstream.responses_tool_result("call_1", "18 °C")
    for stateful in (True, False):
        assert rxstream.responses_continuation(saved, [], stateful=stateful) == rxstream.responses_continuation(
            [asked], [output], stateful=stateful
        )
    assert rxstream.unanswered_tool_calls([asked]) == (CALL,) and rxstream.unanswered_tool_calls(saved) == ()


def test_an_answer_cut_short_sends_back_only_what_the_api_takes() -> None:
    """A turn cut short (Ctrl-C, a dropped connection) goes back as far as it is whole: its text;
    not its tool calls, whose arguments may be cut and which no tool answered; not a thinking block
    that never got its signature, which the API refuses (it takes an assistant turn without its
    thinking); and not at all when nothing is left, since an empty assistant message is refused."""
    cut_call = rxstream.ToolCall(1, "toolu_9", "get_weather", '{"city": "Par')
    signed = rxstream.ThinkingBlock("Weather.", "EqQB", index=0)
    unsigned = rxstream.ThinkingBlock("And then", index=2)
    parts = (
        rxstream.Part("reasoning", "Weather."),
        rxstream.Part("text", "Let me look"),
        rxstream.Part("reasoning", "And then"),
    )
    cut = rxstream.Response(
        "Let me look",
        False,
        9,
        parts,
        reasoning="Weather.And then",
        tool_calls=(cut_call,),
        thinking=(signed, unsigned),
    )
    nothing = rxstream.Response("", False, 2, reasoning="Hm", thinking=(rxstream.ThinkingBlock("Hm", index=0),))
    turns = [turn(1, cut, ASKED), turn(2, nothing)]
    assert rxstream.anthropic_messages(turns) == [
        *ASKED["messages"],
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Weather.", "signature": "EqQB"},
                {"type": "text", "text": "Let me look"},
            ],
        },
    ]
    assert rxstream.chat_messages(turns) == [*ASKED["messages"], {"role": "assistant", "content": "Let me look"}]
    responses_turns = [turn(1, cut, {"model": "m", "input": ASKED["messages"]}), turn(2, nothing)]
    assert rxstream.responses_continuation(responses_turns, [], stateful=False)["input"] == [
        *ASKED["messages"],
        {"role": "assistant", "content": "Let me look"},
    ]
    assert rxstream.unanswered_tool_calls(turns) == ()
    validate(MessageParam, rxstream.anthropic_messages(turns))
    validate(ChatCompletionMessageParam, rxstream.chat_messages(turns))


def anthropic_content(message: Any) -> list[dict[str, Any]]:
    """What the anthropic SDK accumulated, as a request sends it back: empty texts left out and
    adjacent texts joined (rxstream keeps one text), thinking without a signature left out."""
    content: list[dict[str, Any]] = []
    for block in message.content:
        if block.type == "text" and block.text:
            if content and content[-1]["type"] == "text":
                content[-1] = {"type": "text", "text": content[-1]["text"] + block.text}
            else:
                content.append({"type": "text", "text": block.text})
        elif block.type == "thinking":
            content.append({"type": "thinking", "thinking": block.thinking, "signature": block.signature})
        elif block.type == "redacted_thinking":
            content.append({"type": "redacted_thinking", "data": block.data})
        elif block.type == "tool_use":
            content.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
    return [block for block in content if block["type"] != "thinking" or block["signature"]]


def told_apart(content: list[dict[str, Any]]) -> bool:
    """Whether a Response tells where each text goes: right after the start or a thinking block with
    text, past textless thinking blocks (redacted, or a signature alone); never after a tool use nor
    right before a textless thinking block, places a joined text and the thinking blocks' order do not record."""

    def textless(block: dict[str, Any]) -> bool:
        return block["type"] == "redacted_thinking" or (block["type"] == "thinking" and not block["thinking"])

    for at, block in enumerate(content):
        if block["type"] != "text":
            continue
        if at + 1 < len(content) and textless(content[at + 1]):
            return False
        before = at - 1
        while before >= 0 and textless(content[before]):
            before -= 1
        if before >= 0 and content[before]["type"] != "thinking":
            return False
    return True


@given(anthropic_streams())
@settings(max_examples=100, deadline=None)
def test_the_assistant_message_gives_back_the_blocks_in_the_order_they_came(stream: Stream) -> None:
    """Any Messages stream's response goes back as the blocks the SDK accumulated, in order."""
    message: Any = None
    buffers: dict[int, bytes] = {}
    for event in stream.messages:
        message = accumulate_event(event=event, current_snapshot=message, json_bufs=buffers)  # type: ignore[arg-type]
    unsigned = [block for block in message.content if block.type == "thinking" and not block.signature]
    expected = anthropic_content(message)
    assume(told_apart(expected) and not unsigned)  # unsigned blocks: test_an_answer_cut_short_...
    response = through_rxstream(stream.frames)
    assert rxstream.anthropic_assistant_message(response) == {"role": "assistant", "content": expected}
    if expected:
        validate(MessageParam, [{"role": "assistant", "content": expected}])


def finished(stream: Stream) -> rxstream.Response:
    """The stream's response through its own pipeline (a stream that ends incomplete gives its partial)."""
    outcome = outcome_of(rxstream.from_frames(stream.frames).pipe(stream.pipeline()))
    if outcome.items:
        response: rxstream.Response = outcome.items[0]
        return response
    assert isinstance(outcome.error, rxstream.StreamError) and outcome.error.partial is not None
    return outcome.error.partial


@given(chat_streams() | responses_streams())
@settings(max_examples=60, deadline=None)
def test_any_answer_goes_back_as_the_sdk_types_it_with_its_tool_calls(stream: Stream) -> None:
    """Whatever a chat completion or a Responses stream brought (text, refusal, reasoning, tool
    calls), the message or items that send it back are of the SDK's request types and carry the
    calls as they came."""
    response = finished(stream)
    calls = [(call.id, call.name, call.arguments) for call in response.tool_calls if response.complete]
    if stream.protocol == "responses":
        items = rxstream.responses_output_items(response)
        validate(ResponseInputItemParam, items)
        sent = [(item["call_id"], item["name"], item["arguments"]) for item in items if "call_id" in item]
    else:
        message = rxstream.chat_assistant_message(response, keep_reasoning=True)
        validate(ChatCompletionMessageParam, [message])
        assert message.get("reasoning_content", "") == response.reasoning
        sent = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])]
    assert sent == calls


def validate_body(api: str, body: dict[str, Any]) -> None:
    """A whole request body as the API's SDK types it: no key the SDK's create params lack, and each
    message or input item one of its request types."""
    params = PARAMS[api]
    assert set(body) <= params.__required_keys__ | params.__optional_keys__, set(body) - params.__optional_keys__
    assert params.__required_keys__ <= set(body)
    items = body["input"] if api == "responses" else body["messages"]
    if isinstance(items, list):
        kind = {"chat": ChatCompletionMessageParam, "anthropic": MessageParam, "responses": ResponseInputItemParam}
        validate(kind[api], items)


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
    """The validation itself has teeth: an assistant tool call without its id, a thinking block
    without its signature, a request key the API does not know."""
    with pytest.raises(ValueError):
        validate(
            ChatCompletionMessageParam,
            [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": ""}}]}],
        )
    with pytest.raises(ValueError):
        validate(MessageParam, [{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}])
    with pytest.raises(AssertionError):
        validate_body("anthropic", {"model": "m", "max_tokens": 1, "messages": [], "stream_options": {}})
