"""parse_sse, pinned where the in-memory suite left it loose (issue 23, item 5), through the fused
sse_pipeline and the operators piped one by one (the ``sse`` fixture of tests/test_pins_streams.py):
tool calls streamed as OpenAI streams them (each fragment after a call's first alone in its delta),
several choices in one event, reasoning, and what ends the stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

import rxstream
from rxstream import operators as rxo

from .support import run, valve
from .test_pins_streams import body, delta, error_of, sse, streamed

__all__ = ["sse"]  # the fixture, used by name

# https://platform.openai.com/docs/guides/function-calling (streaming): the first chunk of a call
# carries its id, type and name; every later one only {"index", "function": {"arguments"}}.
CALL_START = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}


def alone(*calls: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """A chunk whose delta holds tool_calls and nothing else, as OpenAI sends a call's arguments."""
    choice = {"index": 0, "delta": {"tool_calls": list(calls)}, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "choices": [choice]}


def arguments(text: str, index: int = 0) -> dict[str, Any]:
    return {"index": index, "function": {"arguments": text}}


def test_a_tool_call_streamed_as_openai_streams_it(sse: Callable[..., Any]) -> None:
    raw = body(
        alone(CALL_START), alone(arguments('{"city": ')), alone(arguments('"Paris"}')), delta(finish="tool_calls")
    )
    response = streamed(sse(), raw)
    assert response.text == "" and response.finish_reason == "tool_calls"
    assert response.tool_calls == (rxstream.ToolCall(0, "call_1", "get_weather", '{"city": "Paris"}'),)
    assert response.stats.chunks == response.chunks == 5  # four events and [DONE], fused or not
    assert response.stats.duplicates == 0  # each fragment delivered once, fused or not


def test_a_fragment_with_the_finish_reason_or_the_usage_keeps_them(sse: Callable[..., Any]) -> None:
    # Some servers send the last fragment with the finish reason, or the usage, in the same chunk.
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    with_usage = {**alone(arguments('"Paris"}')), "usage": usage}
    raw = body(alone(CALL_START), alone(arguments('{"city": ')), with_usage, alone(arguments(""), finish="tool_calls"))
    response = streamed(sse(), raw)
    assert response.finish_reason == "tool_calls" and response.stats.usage is not None
    assert response.stats.usage["total_tokens"] == 8
    assert response.tool_calls[0].arguments == '{"city": "Paris"}'


def test_a_delta_with_text_and_tool_calls_keeps_both(sse: Callable[..., Any]) -> None:
    raw = body(
        delta("Let me look.", tool_calls=[CALL_START]), delta(tool_calls=[arguments("{}")]), delta(finish="tool_calls")
    )
    response = streamed(sse(), raw)
    assert response.text == "Let me look." and response.tool_calls[0].arguments == "{}"


def test_every_choice_of_one_event_is_looked_at(sse: Callable[..., Any]) -> None:
    # With n > 1 an event's choices may hold several indices, the chosen one not first.
    both = {
        "object": "chat.completion.chunk",
        "choices": [
            {"index": 1, "delta": {"content": "other"}, "finish_reason": None},
            {"index": 0, "delta": {"content": "mine"}, "finish_reason": None},
        ],
    }
    assert streamed(sse(0), body(both, delta(finish="stop"))).text == "mine"


def test_reasoning_content_is_the_reasoning(sse: Callable[..., Any]) -> None:
    # DeepSeek's delta.reasoning_content (https://api-docs.deepseek.com/guides/reasoning_model).
    response = streamed(sse(), body(delta(reasoning_content="Think."), delta("Answer."), delta(finish="stop")))
    assert response.reasoning == "Think." and response.text == "Answer."


def test_an_event_of_another_type_is_skipped(sse: Callable[..., Any]) -> None:
    # parse_sse: "p is a keep-alive (skipped)": only the event types that carry chunks are read.
    response = streamed(
        sse(), body(delta("Hi"), done=False) + b"event: heartbeat\ndata: \xe2\x99\xa5\n\n" + body(delta(finish="stop"))
    )
    assert isinstance(response, rxstream.Response) and response.text == "Hi" and response.complete


def test_done_ends_with_one_final_chunk_however_the_input_then_ends() -> None:
    # parse_sse's first diagram: -e--p--f--d--| gives -0-----1--2--|, chunk 2 the only final one.
    events = rxstream.sse_events([body(delta("Hi"), delta(finish="stop"))])
    chunks = run(rxstream.from_frames(events).pipe(rxo.parse_sse())).items
    assert [(chunk.index, chunk.is_final) for chunk in chunks] == [(0, False), (1, False), (2, True)]


def test_a_chat_chunk_with_a_type_field_is_still_a_chat_chunk(sse: Callable[..., Any]) -> None:
    # Anthropic's events are told apart by their "type" and the lack of "choices": a compatible
    # server's chunk that also says what it is stays a chat chunk.
    typed = {**delta("Hi"), "type": "chat.completion.chunk"}
    assert streamed(sse(), body(typed, delta(finish="stop"))).text == "Hi"


def test_a_malformed_tool_call_in_a_delta_alone_is_a_frame_error(sse: Callable[..., Any]) -> None:
    error = streamed(sse(), body(alone(CALL_START), alone({"index": -1, "function": {"arguments": "{}"}})))
    assert error_of(error, rxstream.FrameError).number == 2


def test_parallel_calls_in_one_delta_are_each_kept(sse: Callable[..., Any]) -> None:
    second = {**CALL_START, "index": 1, "id": "call_2", "function": {"name": "get_time", "arguments": ""}}
    raw = body(alone(CALL_START, second), alone(arguments("{}"), arguments("{}", 1)), delta(finish="tool_calls"))
    response = streamed(sse(), raw)
    assert [(call.id, call.name, call.arguments) for call in response.tool_calls] == [
        ("call_1", "get_weather", "{}"),
        ("call_2", "get_time", "{}"),
    ]


def test_a_fragment_keeps_whatever_of_the_call_it_names(sse: Callable[..., Any]) -> None:
    # Fragments that name the call other than OpenAI does: an id with the arguments and no name,
    # a name without an id, a first fragment without arguments. Each part is kept where it comes.
    raw = body(
        alone({"index": 0, "id": "call_1", "function": {"arguments": ""}}),
        alone({"index": 0, "function": {"name": "get_weather", "arguments": "{}"}}),
        alone({"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time"}}),
        delta(finish="tool_calls"),
    )
    response = streamed(sse(), raw)
    assert [(call.id, call.name, call.arguments) for call in response.tool_calls] == [
        ("call_1", "get_weather", "{}"),
        ("call_2", "get_time", ""),
    ]


@pytest.mark.parametrize(
    "call",
    [{"index": True, "function": {"arguments": "{}"}}, {"index": 0, "function": "x"}, [0, "{}"]],
    ids=["bool index", "function not an object", "entry not an object"],
)
def test_a_malformed_fragment_alone_in_its_delta_is_a_frame_error(sse: Callable[..., Any], call: Any) -> None:
    error = streamed(sse(), body(alone(CALL_START), alone(call), delta(finish="tool_calls")))
    assert error_of(error, rxstream.FrameError).number == 2


@pytest.mark.parametrize("field", ["reasoning_content", "refusal"])
def test_a_delta_with_text_and_reasoning_or_a_refusal_keeps_both(sse: Callable[..., Any], field: str) -> None:
    # parse_sse: text from delta.content, reasoning from delta.reasoning_content, the refusal from
    # delta.refusal, wherever they come; one delta may carry two of them.
    both: dict[str, Any] = {field: "aside"}
    response = streamed(sse(), body(delta("Hi", **both), delta(finish="stop")))
    assert response.text == "Hi"
    assert (response.reasoning if field == "reasoning_content" else response.refusal) == "aside"


def test_a_body_of_text_ending_without_a_finish_reason_keeps_all_its_text_in_the_partial(
    sse: Callable[..., Any],
) -> None:
    # The README's error table: an incomplete stream's error holds in .partial everything that came.
    error = streamed(sse(), body(delta("Hi"), delta(" there"), delta("!"), done=False))
    assert isinstance(error, rxstream.StreamError) and error.partial is not None
    assert error.partial.text == "Hi there!" and error.partial.chunks == 3


@pytest.mark.parametrize(
    "message, reason",
    [
        ([1, 2], "the event is not a JSON object"),
        ({"object": "chat.completion.chunk"}, "field 'choices' is missing or not a list"),
        ({"choices": [], "usage": 5}, "field 'usage' must be an object"),
        (
            {"choices": [{"index": 0, "delta": {"content": 5}}]},
            "fields 'delta.content', 'delta.reasoning_content' and 'delta.refusal' must be strings",
        ),
        (delta(tool_calls=5), "field 'delta.tool_calls' must be a list"),
        (
            {"choices": [{"index": 0, "delta": {"tool_calls": [[0]]}}]},
            "each entry of 'delta.tool_calls' must be an object with a field 'delta.tool_calls[].index' and a 'function' object",
        ),
        (
            alone({"index": 0, "function": {"name": 5}}),
            "fields 'id', 'function.name' and 'function.arguments' of 'delta.tool_calls[]' must be strings",
        ),
    ],
    ids=["not an object", "no choices", "usage", "content", "tool_calls", "entry", "name"],
)
def test_a_frame_errors_reason_is_one_sentence_naming_the_field(message: Any, reason: str) -> None:
    # FrameError: "reason says why" (the README's error table: .frame, .reason, .number), naming the field.
    events = [rxstream.SSEEvent(orjson.dumps(message).decode())]
    error = run(rxstream.from_frames(events).pipe(rxo.parse_sse())).error
    assert isinstance(error, rxstream.FrameError) and error.reason == reason and error.number == 1


def test_the_source_waits_for_demand_after_dones_final_chunk_too() -> None:
    # from_frames "pauses while the demand below is not ready"; parse_sse hands the source back after
    # every event that gave a chunk, so that it sees to the demand before it gives more.
    demand = rxstream.Demand()
    events = [rxstream.SSEEvent(orjson.dumps(delta("Hi")).decode()), rxstream.SSEEvent("[DONE]")]
    events.append(rxstream.SSEEvent(orjson.dumps(delta("late")).decode()))
    chunks: list[rxstream.Chunk] = []

    def take(chunk: rxstream.Chunk) -> None:
        chunks.append(chunk)
        if chunk.is_final:
            demand.pause()

    rxstream.from_frames(events).pipe(rxo.parse_sse(), valve(demand)).subscribe(take)
    assert [(chunk.index, chunk.is_final) for chunk in chunks] == [(0, False), (1, True)]
