"""The request builders, in memory (README, "Continuing a conversation"): the next request of each
API built from saved turns, value by value, and checked against the SDKs' request types.
tests/test_conversations.py sends the same requests to a raw peer; these need no socket."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import ResponseInputItemParam

import rxstream
from rxstream import Response, Stats, ThinkingBlock, ToolCall, Turn

from .test_conversations import validate

WEATHER = '{"city": "Paris"}'
CALL = ToolCall(0, "call_1", "get_weather", WEATHER)
USER = {"role": "user", "content": "Weather in Paris?"}


def turn(response: Response, request: dict[str, Any] | None = None, number: int = 1) -> Turn:
    return Turn("s", number, response, 0.0, request)


def answer(text: str = "", **fields: Any) -> Response:
    return Response(text, True, 1, **fields)


# --- The first request of each API


def test_a_prompt_is_one_user_message_and_messages_are_copied() -> None:
    # OpenAI's chat completion body: messages, stream, stream_options.include_usage
    # (https://platform.openai.com/docs/api-reference/chat/create).
    assert rxstream.chat_request("m", "hi") == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    given = [dict(USER)]
    body = rxstream.chat_request("m", given, temperature=0)
    assert body["messages"] == [USER] and body["temperature"] == 0
    body["messages"][0]["content"] = "changed"
    assert given == [USER]


def test_a_responses_body_keeps_a_string_input_and_copies_a_list() -> None:
    assert rxstream.responses_request("gpt-5", "hi", background=True) == {
        "model": "gpt-5",
        "input": "hi",
        "stream": True,
        "background": True,
    }
    given = [dict(USER)]
    body = rxstream.responses_request("gpt-5", given)
    assert body == {"model": "gpt-5", "input": [USER], "stream": True}
    body["input"][0]["content"] = "changed"
    assert given == [USER]


def test_an_anthropic_body_carries_max_tokens() -> None:
    # max_tokens is required (https://docs.anthropic.com/en/api/messages).
    assert rxstream.anthropic_request("claude", "hi", max_tokens=1024, system="brief") == {
        "model": "claude",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "system": "brief",
    }


# --- Chat completions


def test_chat_messages_replay_the_last_recorded_request_then_each_later_answer() -> None:
    first = rxstream.chat_request("m", "Weather in Paris?")
    turns = [
        turn(answer(tool_calls=(CALL,), reasoning="Look it up."), first),
        turn(answer("It is 18 °C."), None, 2),  # saved without its request: its answer still counts
    ]
    assistant_call = {
        "role": "assistant",
        "content": None,  # no text: null, as the API takes an assistant message with tool_calls
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": WEATHER}}],
    }
    messages = rxstream.chat_messages(turns)
    assert messages == [USER, assistant_call, {"role": "assistant", "content": "It is 18 °C."}]
    validate(ChatCompletionMessageParam, messages)


def test_a_later_recorded_request_supersedes_the_earlier_turns() -> None:
    later = rxstream.chat_request(
        "m", [USER, {"role": "assistant", "content": "18."}, {"role": "user", "content": "F?"}]
    )
    turns = [turn(answer("18."), rxstream.chat_request("m", "Weather in Paris?")), turn(answer("64 °F."), later, 2)]
    assert rxstream.chat_messages(turns) == [*later["messages"], {"role": "assistant", "content": "64 °F."}]


def test_a_request_without_messages_is_not_replayed() -> None:
    # A turn whose request holds no messages list (another API's body): the one before it is replayed.
    turns = [turn(answer("a"), rxstream.chat_request("m", "q")), turn(answer("b"), {"model": "m"}, 2)]
    assert rxstream.chat_messages(turns) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]
    assert rxstream.chat_messages([turn(answer("a"))]) == [{"role": "assistant", "content": "a"}]
    assert rxstream.chat_messages([]) == []


def test_reasoning_goes_back_only_when_asked() -> None:
    # DeepSeek answers 400 to reasoning_content in the messages
    # (https://api-docs.deepseek.com/guides/reasoning_model).
    thinking = answer("18.", reasoning="Look it up.")
    assert rxstream.chat_assistant_message(thinking) == {"role": "assistant", "content": "18."}
    assert rxstream.chat_assistant_message(thinking, keep_reasoning=True) == {
        "role": "assistant",
        "content": "18.",
        "reasoning_content": "Look it up.",
    }
    assert rxstream.chat_assistant_message(answer("18."), keep_reasoning=True) == {
        "role": "assistant",
        "content": "18.",
    }
    turns = [turn(thinking, rxstream.chat_request("m", "q"))]
    assert rxstream.chat_messages(turns, keep_reasoning=True)[-1]["reasoning_content"] == "Look it up."


def test_a_refusal_goes_back_as_the_messages_refusal() -> None:
    # The assistant message's refusal field (https://platform.openai.com/docs/api-reference/chat/create).
    message = rxstream.chat_assistant_message(answer(refusal="I can't help with that."))
    assert message == {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    validate(ChatCompletionMessageParam, [message])


def test_a_tool_result_answers_its_call() -> None:
    # A role "tool" message per call (https://platform.openai.com/docs/guides/function-calling).
    result = rxstream.chat_tool_result("call_1", "18 °C")
    assert result == {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"}
    validate(ChatCompletionMessageParam, [result])


# --- Anthropic Messages


def test_anthropic_blocks_go_back_in_order_each_thinking_with_its_signature() -> None:
    # Thinking blocks with their signatures and redacted_thinking as it came, before the tool_use
    # (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks).
    response = answer(
        "Let me check.",
        thinking=(
            ThinkingBlock("The user wants the weather.", "sig_1"),
            ThinkingBlock(data="EmwKAhgBEgy3va3pzix"),
            ThinkingBlock("cut short"),  # no signature (the stream ended inside it): the API refuses it
        ),
        tool_calls=(ToolCall(1, "toolu_01", "get_weather", WEATHER),),
    )
    message = rxstream.anthropic_assistant_message(response)
    assert message == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user wants the weather.", "signature": "sig_1"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    assert rxstream.anthropic_assistant_message(answer("")) == {"role": "assistant", "content": []}
    result = rxstream.anthropic_tool_result("toolu_01", "18 °C")
    turns = [turn(response, rxstream.anthropic_request("claude", "Weather in Paris?", max_tokens=1024))]
    messages = [*rxstream.anthropic_messages(turns), result]
    assert messages == [USER, message, result]
    validate(MessageParam, messages)


def test_an_anthropic_tool_result_says_is_error_only_for_an_error() -> None:
    # tool_result's is_error (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use).
    assert rxstream.anthropic_tool_result("toolu_01", "18 °C") == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 °C"}],
    }
    failed = rxstream.anthropic_tool_result("toolu_01", "no such city", is_error=True)
    assert failed["content"][0]["is_error"] is True
    validate(MessageParam, [failed])


# --- Responses


def test_responses_continue_by_previous_response_id_with_only_the_new_input() -> None:
    # https://platform.openai.com/docs/guides/conversation-state
    output = rxstream.responses_tool_result("call_1", "18 °C")
    assert output == {"type": "function_call_output", "call_id": "call_1", "output": "18 °C"}
    turns = [turn(answer(tool_calls=(CALL,), stats=Stats(response_id="resp_1")), {"input": "Weather in Paris?"})]
    given = [output]
    fields = rxstream.responses_continuation(turns, given)
    assert fields == {"previous_response_id": "resp_1", "input": [output]}
    assert fields["input"][0] is not output  # copied


@pytest.mark.parametrize("stateful", [True, False])
def test_responses_without_state_send_the_whole_conversation(stateful: bool) -> None:
    # store: false, or a last response without an id: the recorded input, each response's
    # output items (text as an assistant message, then function calls), then the new input.
    call = ToolCall(0, "call_1", "get_weather", WEATHER)
    first = answer("Checking.", tool_calls=(call,), stats=Stats(response_id=None if stateful else "resp_1"))
    turns = [
        turn(first, rxstream.responses_request("gpt-5", "Weather in Paris?")),
        turn(answer("It is 18 °C."), None, 2),
    ]
    thanks = {"role": "user", "content": "Thanks"}
    fields = rxstream.responses_continuation(turns, [thanks], stateful=stateful)
    assert fields == {
        "input": [
            USER,
            {"role": "assistant", "content": "Checking."},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": WEATHER},
            {"role": "assistant", "content": "It is 18 °C."},
            thanks,
        ]
    }
    validate(ResponseInputItemParam, fields["input"])
    assert rxstream.responses_continuation([], [thanks]) == {"input": [thanks]}
