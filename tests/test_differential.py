"""rxstream against the official SDKs' own accumulators, on any valid stream hypothesis makes.

openai's ``ChatCompletionStreamState`` and anthropic's ``accumulate_event`` are the oracles: the
final text, reasoning, tool calls, refusal, finish reason and usage must be theirs, both for
rxstream's pipeline and for the Response the stream's strategy (rxstream.testing) says it must give.
"""

from __future__ import annotations

import asyncio
from typing import Any

from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from reactivex import Observable

import rxstream
from rxstream.protocol._sse import SSEEvent
from rxstream.testing import Stream, anthropic_streams, chat_streams, content_of
from rxstream.testing._streams import ARGUMENTS, NAMES, PIECES
from rxstream.testing._streams import split_anywhere as split

__all__ = ["ARGUMENTS", "NAMES", "PIECES", "split"]  # the Responses differential test draws with these


async def finished(response: Observable[rxstream.Response]) -> rxstream.Response:
    return await response


def through_rxstream(events: list[SSEEvent] | tuple[SSEEvent, ...], choice: int = 0) -> rxstream.Response:
    return asyncio.run(finished(rxstream.from_frames(events).pipe(rxstream.sse_pipeline(choice=choice))))


# --- OpenAI-compatible chat completions ---------------------------------------------------


def as_the_openai_sdk_accumulates(stream: Stream) -> list[tuple[Any, ...]]:
    """Each choice as the SDK's accumulator ends it: text, reasoning, refusal, tool calls, finish reason, usage."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in stream.messages:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    snapshot = state.current_completion_snapshot
    usage = None if snapshot.usage is None else snapshot.usage.model_dump(exclude_none=True)
    return [
        (
            choice.message.content or "",
            getattr(choice.message, "reasoning_content", None) or "",
            choice.message.refusal or None,
            [
                (position, call.id, call.function.name, call.function.arguments)
                for position, call in enumerate(choice.message.tool_calls or [])
            ],
            choice.finish_reason,
            usage,
        )
        for choice in sorted(snapshot.choices, key=lambda choice: choice.index)
    ]


def as_rxstream_gives(response: rxstream.Response) -> tuple[Any, ...]:
    calls = [(call.index, call.id, call.name, call.arguments) for call in response.tool_calls]
    return response.text, response.reasoning, response.refusal, calls, response.finish_reason, response.stats.usage


@given(chat_streams())
@settings(max_examples=150, deadline=None)
def test_chat_completions_accumulate_as_openai_does(stream: Stream) -> None:
    (sdk,) = as_the_openai_sdk_accumulates(stream)
    response = through_rxstream(stream.frames)
    assert response.complete
    assert as_rxstream_gives(response) == sdk == as_rxstream_gives(stream.expected)
    assert content_of(response) == content_of(stream.expected)


@given(st.integers(2, 4).flatmap(lambda choices: chat_streams(choices=choices)))
@settings(max_examples=60, deadline=None)
def test_each_of_several_choices_accumulates_as_openai_does(stream: Stream) -> None:
    """n > 1: the choices' events interleave; parse_sse(choice=k) reads choice k as the SDK does."""
    sdk = as_the_openai_sdk_accumulates(stream)
    assert len(sdk) == len(stream.choices)
    for number, expected in enumerate(stream.choices):
        response = through_rxstream(stream.frames, choice=number)
        assert as_rxstream_gives(response) == sdk[number] == as_rxstream_gives(expected)
        assert content_of(response) == content_of(expected)


# --- Anthropic Messages -------------------------------------------------------------------


@given(anthropic_streams())
@settings(max_examples=150, deadline=None)
def test_anthropic_messages_accumulate_as_anthropic_does(stream: Stream) -> None:
    message: Any = None
    buffers: dict[int, bytes] = {}
    for event in stream.messages:
        message = accumulate_event(event=event, current_snapshot=message, json_bufs=buffers)  # type: ignore[arg-type]

    response = through_rxstream(stream.frames)
    assert content_of(response) == content_of(stream.expected)
    assert response.complete
    assert response.text == "".join(block.text for block in message.content if block.type == "text")
    assert response.reasoning == "".join(block.thinking for block in message.content if block.type == "thinking")
    # each thinking block with its own signature, redacted ones as they came, in order and at
    # their places among the blocks (tool calls included), as the SDK's message.content
    assert response.thinking == tuple(
        rxstream.ThinkingBlock(block.thinking, block.signature or None, index=index)
        if block.type == "thinking"
        else rxstream.ThinkingBlock(data=block.data, index=index)
        for index, block in enumerate(message.content)
        if block.type in ("thinking", "redacted_thinking")
    )
    assert response.stop_details == (None if message.stop_details is None else message.stop_details.to_dict())
    assert [(call.index, call.id, call.name, call.parsed()) for call in response.tool_calls] == [
        (index, block.id, block.name, block.input)
        for index, block in enumerate(message.content)
        if block.type == "tool_use"
    ]
    assert response.finish_reason == message.stop_reason and response.refusal is None
    assert response.stats.usage is not None
    assert {name: value for name, value in response.stats.usage.items()} == message.usage.model_dump(exclude_none=True)
