"""rxstream against the official SDKs' own accumulators, on any valid stream hypothesis makes.

openai's ``ChatCompletionStreamState`` and anthropic's ``accumulate_event`` are the oracles: the
final text, reasoning, tool calls, refusal, finish reason and usage must be theirs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from reactivex import Observable

import rxstream
from rxstream.protocol._sse import SSEEvent

TEXT = st.text(st.characters(codec="utf-8"), max_size=12)  # no lone surrogates: JSON text is UTF-8
PIECES = st.lists(TEXT.filter(bool), max_size=6)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
ARGUMENTS = st.dictionaries(TEXT, JSON_VALUES, max_size=4).map(lambda value: orjson.dumps(value).decode())
NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)


@st.composite
def split(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` cut at any points (empty pieces included: servers send them)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    return [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@st.composite
def interleave(draw: st.DrawFn, queues: list[list[Any]], after: dict[int, int]) -> list[Any]:
    """The items of ``queues`` in one sequence, each queue's in order; queue ``k`` starts only
    once queue ``after[k]`` has (the SDK keys tool calls by position, so they start in index order)."""
    queues = [list(queue) for queue in queues]
    started = [False] * len(queues)
    merged: list[Any] = []
    while True:
        ready = [k for k, queue in enumerate(queues) if queue and (k not in after or started[after[k]])]
        if not ready:
            return merged
        k = draw(st.sampled_from(ready))
        started[k] = True
        merged.append(queues[k].pop(0))


async def finished(response: Observable[rxstream.Response]) -> rxstream.Response:
    return await response


def through_rxstream(events: list[SSEEvent]) -> rxstream.Response:
    return asyncio.run(finished(rxstream.from_frames(events).pipe(rxstream.sse_pipeline())))


# --- OpenAI-compatible chat completions ---------------------------------------------------


@st.composite
def chat_completion_stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A valid stream of chat.completion.chunk objects: text, reasoning, a refusal and several
    tool calls, interleaved, arguments split anywhere, a finish reason and maybe a usage chunk."""
    deltas: list[list[dict[str, Any]]] = [
        [{"content": piece} for piece in draw(PIECES)],
        [{"reasoning_content": piece} for piece in draw(PIECES)],
        [{"refusal": piece} for piece in draw(PIECES)],
    ]
    after: dict[int, int] = {}
    for number in range(draw(st.integers(0, 3))):
        arguments = draw(split(draw(ARGUMENTS)))
        first = {
            "index": number,
            "id": f"call_{draw(NAMES)}",
            "type": "function",
            "function": {"name": draw(NAMES), "arguments": arguments[0]},
        }
        deltas.append(
            [{"tool_calls": [first]}]
            + [{"tool_calls": [{"index": number, "function": {"arguments": piece}}]} for piece in arguments[1:]]
        )
        if number:
            after[len(deltas) - 1] = len(deltas) - 2
    merged: list[dict[str, Any]] = draw(interleave(deltas, after))
    # one chunk may carry several tool-call fragments: join some runs of neighbours
    grouped: list[dict[str, Any]] = []
    for delta in merged:
        if grouped and "tool_calls" in delta and "tool_calls" in grouped[-1] and draw(st.booleans()):
            grouped[-1] = {"tool_calls": grouped[-1]["tool_calls"] + delta["tool_calls"]}
        else:
            grouped.append(delta)
    finish_reason = draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"]))
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1727346178, "model": "gpt-4o"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in grouped]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
    if draw(st.booleans()):
        prompt, completion = draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000))
        chunks.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )
    return chunks


@given(chat_completion_stream())
@settings(max_examples=150, deadline=None)
def test_chat_completions_accumulate_as_openai_does(chunks: list[dict[str, Any]]) -> None:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    snapshot = state.current_completion_snapshot
    (choice,) = snapshot.choices
    message = choice.message

    response = through_rxstream([SSEEvent(orjson.dumps(chunk).decode()) for chunk in chunks] + [SSEEvent("[DONE]")])
    assert response.complete
    assert response.text == (message.content or "")
    assert response.reasoning == (getattr(message, "reasoning_content", None) or "")
    assert response.refusal == (message.refusal or None)
    assert [(call.index, call.id, call.name, call.arguments) for call in response.tool_calls] == [
        (position, call.id, call.function.name, call.function.arguments)
        for position, call in enumerate(message.tool_calls or [])
    ]
    assert response.finish_reason == choice.finish_reason
    sdk_usage = None if snapshot.usage is None else snapshot.usage.model_dump(exclude_none=True)
    assert response.stats.usage == sdk_usage


# --- Anthropic Messages -------------------------------------------------------------------


@st.composite
def block_events(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    """One content block: text, thinking (with a signature) or tool_use, its deltas, its stop."""
    kind = draw(st.sampled_from(["text", "thinking", "tool_use"]))
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": draw(st.sampled_from(["", "Hi "]))}
        deltas = [{"type": "text_delta", "text": piece} for piece in draw(PIECES)]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in draw(PIECES)]
        if draw(st.booleans()):
            deltas.append({"type": "signature_delta", "signature": "Eq" + draw(NAMES)})
    else:
        start = {"type": "tool_use", "id": f"toolu_{draw(NAMES)}", "name": draw(NAMES), "input": {}}
        arguments = draw(st.sampled_from([[], [""]]) | ARGUMENTS.flatmap(split))
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in arguments]
    return (
        [{"type": "content_block_start", "index": index, "content_block": start}]
        + [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        + [{"type": "content_block_stop", "index": index}]
    )


@st.composite
def anthropic_stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A valid Messages stream: message_start, blocks one after another, pings anywhere, message_delta, message_stop."""
    usage: dict[str, Any] = {"input_tokens": draw(st.integers(0, 5000)), "output_tokens": 1}
    if draw(st.booleans()):
        usage |= {
            "cache_creation_input_tokens": draw(st.integers(0, 99)),
            "cache_read_input_tokens": draw(st.integers(0, 99)),
        }
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        }
    ]
    for index in range(draw(st.integers(0, 4))):
        events += draw(block_events(index))
    for _ in range(draw(st.integers(0, 2))):
        events.insert(draw(st.integers(1, len(events))), {"type": "ping"})
    final_usage: dict[str, Any] = {"output_tokens": draw(st.integers(1, 5000))}
    if draw(st.booleans()):  # a total that did not change may come as null: message_start's stands
        final_usage["input_tokens"] = draw(st.none() | st.integers(0, 5000))
    stop_reason = draw(st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal"]))
    events.append(
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": final_usage}
    )
    events.append({"type": "message_stop"})
    return events


@given(anthropic_stream())
@settings(max_examples=150, deadline=None)
def test_anthropic_messages_accumulate_as_anthropic_does(events: list[dict[str, Any]]) -> None:
    message: Any = None
    buffers: dict[int, bytes] = {}
    for event in events:
        message = accumulate_event(event=event, current_snapshot=message, json_bufs=buffers)  # type: ignore[arg-type]

    response = through_rxstream([SSEEvent(orjson.dumps(event).decode(), event["type"]) for event in events])
    assert response.complete
    assert response.text == "".join(block.text for block in message.content if block.type == "text")
    assert response.reasoning == "".join(block.thinking for block in message.content if block.type == "thinking")
    assert response.reasoning_signatures == tuple(
        block.signature for block in message.content if block.type == "thinking" and block.signature
    )
    assert [(call.index, call.id, call.name, call.parsed()) for call in response.tool_calls] == [
        (index, block.id, block.name, block.input)
        for index, block in enumerate(message.content)
        if block.type == "tool_use"
    ]
    assert response.finish_reason == message.stop_reason and response.refusal is None
    assert response.stats.usage is not None
    assert {name: value for name, value in response.stats.usage.items()} == message.usage.model_dump(exclude_none=True)
