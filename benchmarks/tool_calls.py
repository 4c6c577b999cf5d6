"""6. Tool-call argument fragments: rxstream against openai's own accumulator, and against text of the same size."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, cast

import orjson

import rxstream
from rxstream.protocol._sse import SSEEvent

from .measure import Result, medians, progress

if TYPE_CHECKING:  # openai is the oracle, not a dependency: it is imported when this row runs
    from openai.lib.streaming.chat import ChatCompletionStreamState

CALLS = 3  # parallel calls, their fragments interleaved
FRAGMENT = '"Edinb", '  # a typical argument fragment: a few characters of JSON
BASE = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1727346178, "model": "gpt-4o"}


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> SSEEvent:
    return SSEEvent(
        orjson.dumps({**BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}).decode()
    )


def tool_call_events(count: int) -> list[SSEEvent]:
    """``count`` argument fragments of ``CALLS`` interleaved calls, each call opened by a fragment naming it."""
    opening = [
        chunk(
            {
                "tool_calls": [
                    {
                        "index": k,
                        "id": f"call_{k}",
                        "type": "function",
                        "function": {"name": f"tool_{k}", "arguments": '{"a": ['},
                    }
                ]
            }
        )
        for k in range(CALLS)
    ]
    fragments = [
        chunk({"tool_calls": [{"index": i % CALLS, "function": {"arguments": FRAGMENT}}]}) for i in range(count)
    ]
    closing = [chunk({"tool_calls": [{"index": k, "function": {"arguments": "0]}"}}]}) for k in range(CALLS)]
    return [
        chunk({"role": "assistant", "content": None}),
        *opening,
        *fragments,
        *closing,
        chunk({}, "tool_calls"),
        SSEEvent("[DONE]"),
    ]


def text_events(count: int) -> list[SSEEvent]:
    """A text stream of the same size, event for event (its text as long as a fragment's JSON):
    what a tool-call fragment must not cost more than."""
    size = len(chunk({"tool_calls": [{"index": 0, "function": {"arguments": FRAGMENT}}]}).data)
    padding = "x" * (size - len(chunk({"content": FRAGMENT}).data))
    fragments = [chunk({"content": FRAGMENT + padding}) for _ in range(count + 2 * CALLS)]
    return [chunk({"role": "assistant", "content": None}), *fragments, chunk({}, "stop"), SSEEvent("[DONE]")]


def through_rxstream(events: list[SSEEvent]) -> rxstream.Response:
    responses: list[rxstream.Response] = []
    rxstream.from_frames(events).pipe(rxstream.sse_pipeline()).subscribe(responses.append)
    return responses[0]


def through_openai(events: list[SSEEvent]) -> ChatCompletionStreamState[Any]:
    """What the SDK's stream does with each event (orjson in place of its json.loads, to its advantage)."""
    from openai._models import construct_type  # how the SDK's Stream builds each chunk from its JSON
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for event in events:
        if event.data != "[DONE]":
            state.handle_chunk(
                cast(ChatCompletionChunk, construct_type(type_=ChatCompletionChunk, value=orjson.loads(event.data)))
            )
    return state


def arguments_agree(events: list[SSEEvent]) -> bool:
    ours = [(call.id, call.name, call.arguments) for call in through_rxstream(events).tool_calls]
    message = through_openai(events).current_completion_snapshot.choices[0].message
    theirs = [(call.id, call.function.name, call.function.arguments) for call in message.tool_calls or []]
    return ours == theirs and all(call.parsed() for call in through_rxstream(events).tool_calls)


def run(count: int, repetitions: int) -> list[Result]:
    try:
        import openai  # noqa: F401
    except ImportError:
        progress("tool calls: skipped, the openai SDK (the oracle) is not installed: pip install openai")
        return []
    tools, text = tool_call_events(count), text_events(count)
    progress(
        f"tool calls, {len(tools):,} events of argument fragments through rxstream and openai's ChatCompletionStreamState"
    )
    assert arguments_agree(tools), "rxstream and openai's accumulator disagree"
    seconds = medians(
        {
            "tools": partial(through_rxstream, tools),
            "text": partial(through_rxstream, text),
            "openai": partial(through_openai, tools),
        },
        repetitions,
    )
    rate, text_rate, sdk_rate = (
        len(tools) / seconds["tools"],
        len(text) / seconds["text"],
        len(tools) / seconds["openai"],
    )
    extra = {f"{name}_seconds": value for name, value in seconds.items()}
    return [
        Result(
            "tool calls: rxstream vs openai ChatCompletionStreamState, events/s",
            rate / sdk_rate,
            2.0,
            detail=f"{rate:,.0f} vs {sdk_rate:,.0f} events/s ({len(tools):,} events, {CALLS} interleaved calls)",
            extra=extra,
        ),
        Result(
            "tool calls: argument fragments vs text events, rxstream events/s",
            rate / text_rate,
            1.0,
            detail=f"{1e6 / rate:.2f} vs {1e6 / text_rate:.2f} µs an event",
        ),
    ]
