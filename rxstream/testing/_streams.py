"""Hypothesis strategies for valid streams of every protocol rxstream reads, each with the Response it must give.

The expected Response is worked out from what the strategy put into the stream (the pieces of
text, the calls, the finish reason), not by running rxstream, so it can judge rxstream and a
user's pipeline alike. ``chunks`` counts what the protocol's parser numbers (the README says
which events carry a chunk); of ``stats`` only ``usage`` and ``response_id`` are the stream's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
from hypothesis import strategies as st
from reactivex import Observable

from ..core._values import Part, PartKind, Response, Stats, ThinkingBlock, ToolCall, Usage
from ..operators._pipeline import pipeline, responses_pipeline, sse_pipeline
from ..protocol._sse import SSEEvent
from ._responses_events import FunctionCall, Item, Message, Reasoning, response_events

Protocol = Literal["chunks", "chat", "anthropic", "responses"]
Timer = Callable[[], float]

TEXT = st.text(st.characters(codec="utf-8"), max_size=12)  # no lone surrogates: JSON text is UTF-8
PIECES = st.lists(TEXT.filter(bool), max_size=6)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
ARGUMENTS = st.dictionaries(TEXT, JSON_VALUES, max_size=4).map(lambda value: orjson.dumps(value).decode())
NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)
FINISH_REASONS = ["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True)
class Stream:
    """A valid stream and the Response it must give.

    ``frames`` are what the protocol's pipeline takes: frame bytes (``"chunks"``), ``SSEEvent``s
    (``"chat"``, ``"anthropic"``) or each event's JSON text (``"responses"``). ``messages`` are
    the JSON objects an SDK reads (none for chunk frames). ``choices`` holds every choice's
    Response of a chat stream with n > 1 (``expected`` is choice 0's).
    """

    protocol: Protocol
    frames: tuple[Any, ...]
    expected: Response
    messages: tuple[dict[str, Any], ...] = ()
    choices: tuple[Response, ...] = ()

    @property
    def numbered(self) -> bool:
        """Whether each frame carries its own index, so that it can come out of order, twice or not at all."""
        return self.protocol in ("chunks", "responses")

    def pipeline(
        self, *, window: int = 64, max_pending: int = 5, choice: int = 0, timer: Timer = time.perf_counter
    ) -> Callable[[Observable[Any]], Observable[Response]]:
        """rxstream's fused pipeline for this protocol."""
        if self.protocol == "chunks":
            return pipeline(window, max_pending, timer=timer)
        if self.protocol == "responses":
            return responses_pipeline(window, max_pending, timer=timer)
        return sse_pipeline(window, max_pending, choice=choice, timer=timer)


@st.composite
def split_anywhere(draw: st.DrawFn, text: str, *, max_cuts: int = 6) -> list[str]:
    """``text`` cut at any points, empty pieces included (servers send them)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=max_cuts)))
    return [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def parts_of(runs: Sequence[tuple[PartKind, str]]) -> tuple[Part, ...]:
    """The parts of a response whose text, reasoning and images came in this order: neighbouring
    text (or reasoning) joins into one part, an image is a part of its own, empty text is nothing."""
    parts: list[Part] = []
    for kind, value in runs:
        if kind != "image" and not value:
            continue
        if parts and kind != "image" and parts[-1].kind == kind:
            parts[-1] = Part(kind, parts[-1].value + value)
        else:
            parts.append(Part(kind, value))
    return tuple(parts)


CHAT_ID = "chatcmpl-1"  # the id every drawn chat completion gives, which the Response keeps


def response_of(
    runs: Sequence[tuple[PartKind, str]],
    chunks: int,
    *,
    complete: bool = True,
    tool_calls: Sequence[ToolCall] = (),
    refusal: str = "",
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    response_id: str | None = None,
    thinking: Sequence[ThinkingBlock] | None = None,
    stop_details: dict[str, Any] | None = None,
) -> Response:
    """The Response of a stream that brought ``runs`` (kind, value) in order, in ``chunks`` chunks;
    its ``thinking`` one block of the reasoning (as a stream without blocks of its own gives) unless given."""
    reasoning = "".join(value for kind, value in runs if kind == "reasoning")
    if thinking is None:
        thinking = (ThinkingBlock(reasoning),) if reasoning else ()
    return Response(
        "".join(value for kind, value in runs if kind == "text"),
        complete,
        chunks,
        parts_of(runs),
        Stats(usage=None if usage is None else Usage(usage), response_id=response_id, stop_details=stop_details),
        reasoning,
        finish_reason,
        tuple(tool_calls),
        refusal or None,
        tuple(thinking),
    )


# --- rxstream's chunk frames ---------------------------------------------------------------


def chunk_frame(index: int, data: str, is_final: bool, **extra: Any) -> bytes:
    """One frame of rxstream's WebSocket protocol; ``extra`` fields (``text``, ``image_url``) go into the chunk."""
    return orjson.dumps(
        {"chunk": {"index": index, "data": data, "is_final": is_final, **extra}, "timestamp": 1672531200}
    )


@st.composite
def chunk_streams(
    draw: st.DrawFn,
    *,
    min_chunks: int = 1,
    max_chunks: int = 30,
    multimodal: bool = True,
    text: st.SearchStrategy[str] | None = None,
) -> Stream:
    """Chunk frames 0..n-1 in order, the last final: text, and with ``multimodal`` a ``text``
    field or an image now and then. With ``text``, one text drawn from it, cut anywhere into the chunks."""
    if text is not None:
        pieces = draw(split_anywhere(draw(text), max_cuts=max_chunks - 1))
        last = len(pieces) - 1
        frames = tuple(chunk_frame(index, piece, index == last) for index, piece in enumerate(pieces))
        return Stream("chunks", frames, response_of([("text", piece) for piece in pieces], len(pieces)))
    count = draw(st.integers(min_chunks, max_chunks))
    chunks: list[bytes] = []
    runs: list[tuple[PartKind, str]] = []
    for index in range(count):
        data = draw(TEXT)
        extra: dict[str, str] = {}
        if multimodal:
            extra = draw(
                st.just({})
                | st.fixed_dictionaries(
                    {}, optional={"text": TEXT, "image_url": st.sampled_from(["https://img/a.png"])}
                )
            )
        chunks.append(chunk_frame(index, data, index == count - 1, **extra))
        runs.append(("text", data + extra.get("text", "")))
        if "image_url" in extra:
            runs.append(("image", extra["image_url"]))
    return Stream("chunks", tuple(chunks), response_of(runs, count))


# --- OpenAI chat completions -----------------------------------------------------------------


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


@st.composite
def chat_deltas(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[ToolCall]]:
    """One choice's deltas: text, reasoning, a refusal and several tool calls, interleaved, arguments split anywhere."""
    deltas: list[list[dict[str, Any]]] = [
        [{"content": piece} for piece in draw(PIECES)],
        [{"reasoning_content": piece} for piece in draw(PIECES)],
        [{"refusal": piece} for piece in draw(PIECES)],
    ]
    after: dict[int, int] = {}
    calls: list[ToolCall] = []
    for number in range(draw(st.integers(0, 3))):
        arguments = draw(split_anywhere(draw(ARGUMENTS)))
        call = ToolCall(number, f"call_{draw(NAMES)}", draw(NAMES), "".join(arguments))
        calls.append(call)
        first = {
            "index": number,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": arguments[0]},
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
    return grouped, calls


@st.composite
def chat_streams(draw: st.DrawFn, *, choices: int = 1) -> Stream:
    """An OpenAI chat-completions SSE stream: per choice a role event, text, reasoning
    (``reasoning_content``), a refusal and tool calls interleaved, arguments split anywhere, a
    finish reason; maybe a usage chunk (``choices: []``); ``[DONE]``. With ``choices`` > 1 the
    choices' events interleave (n > 1); ``Stream.choices`` has each one's Response."""
    base = {"id": CHAT_ID, "object": "chat.completion.chunk", "created": 1727346178, "model": "gpt-4o"}
    per_choice: list[list[dict[str, Any]]] = []
    expected: list[tuple[list[tuple[PartKind, str]], int, list[ToolCall], str, str]] = []
    for choice in range(choices):
        deltas, calls = draw(chat_deltas())
        finish_reason = draw(st.sampled_from(FINISH_REASONS))
        events = [{"index": choice, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        events += [{"index": choice, "delta": delta, "finish_reason": None} for delta in deltas]
        events.append({"index": choice, "delta": {}, "finish_reason": finish_reason})
        per_choice.append(events)
        runs: list[tuple[PartKind, str]] = [
            ("text", delta["content"]) if "content" in delta else ("reasoning", delta["reasoning_content"])
            for delta in deltas
            if "content" in delta or "reasoning_content" in delta
        ]
        refusal = "".join(delta.get("refusal", "") for delta in deltas)
        expected.append((runs, len(deltas) + 1, calls, refusal, finish_reason))  # its deltas and its finish reason
    # each choice starts after the one before it, as OpenAI sends them (the SDK's accumulator counts on it)
    in_order = {choice: choice - 1 for choice in range(1, choices)}
    messages = [{**base, "choices": [event]} for event in draw(interleave(per_choice, in_order))]
    usage = None
    if draw(st.booleans()):
        prompt, completion = draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000))
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        messages.append({**base, "choices": [], "usage": usage})
    frames = tuple(SSEEvent(orjson.dumps(message).decode()) for message in messages) + (SSEEvent("[DONE]"),)
    responses = tuple(
        # a chunk per delta, the finish reason's, the usage chunk's and [DONE]'s
        response_of(
            runs,
            chunks + (usage is not None) + 1,
            tool_calls=calls,
            refusal=refusal,
            finish_reason=reason,
            usage=usage,
            response_id=CHAT_ID,
        )
        for runs, chunks, calls, refusal, reason in expected
    )
    return Stream("chat", frames, responses[0], tuple(messages), responses)


# --- Anthropic Messages ----------------------------------------------------------------------


@st.composite
def anthropic_block(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    """One content block: text, thinking (with a signature), redacted_thinking or tool_use, its deltas, its stop."""
    kind = draw(st.sampled_from(["text", "thinking", "redacted_thinking", "tool_use"]))
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": draw(st.sampled_from(["", "Hi "]))}
        deltas = [{"type": "text_delta", "text": piece} for piece in draw(PIECES)]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in draw(PIECES)]
        if draw(st.booleans()):
            deltas.append({"type": "signature_delta", "signature": "Eq" + draw(NAMES)})
    elif kind == "redacted_thinking":  # whole in its start, no deltas
        start = {"type": "redacted_thinking", "data": "EmwKAhgB" + draw(NAMES)}
        deltas = []
    else:
        start = {"type": "tool_use", "id": f"toolu_{draw(NAMES)}", "name": draw(NAMES), "input": {}}
        arguments = draw(st.sampled_from([[], [""]]) | ARGUMENTS.flatmap(split_anywhere))
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in arguments]
    return (
        [{"type": "content_block_start", "index": index, "content_block": start}]
        + [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        + [{"type": "content_block_stop", "index": index}]
    )


def anthropic_chunks(events: Sequence[dict[str, Any]]) -> int:
    """How many chunks parse_sse makes of a Messages stream: message_start (with usage), each
    delta (arguments only when not empty), a tool_use, thinking, redacted_thinking or non-empty
    text block's start, message_delta and message_stop; pings and block stops carry nothing."""
    count = 0
    for event in events:
        kind = event["type"]
        if kind == "content_block_delta":
            count += event["delta"]["type"] != "input_json_delta" or bool(event["delta"]["partial_json"])
        elif kind == "content_block_start":
            block = event["content_block"]
            count += block["type"] in ("tool_use", "thinking", "redacted_thinking") or bool(block.get("text"))
        else:
            count += kind in ("message_start", "message_delta", "message_stop")
    return count


@st.composite
def anthropic_streams(draw: st.DrawFn) -> Stream:
    """An Anthropic Messages SSE stream: message_start, text, thinking and tool_use blocks one
    after another, pings anywhere, message_delta (stop reason, usage) and message_stop."""
    usage: dict[str, Any] = {"input_tokens": draw(st.integers(0, 5000)), "output_tokens": 1}
    if draw(st.booleans()):
        usage |= {
            "cache_creation_input_tokens": draw(st.integers(0, 99)),
            "cache_read_input_tokens": draw(st.integers(0, 99)),
        }
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    for index in range(draw(st.integers(0, 4))):
        events += draw(anthropic_block(index))
    for _ in range(draw(st.integers(0, 2))):
        events.insert(draw(st.integers(1, len(events))), {"type": "ping"})
    final_usage: dict[str, Any] = {"output_tokens": draw(st.integers(1, 5000))}
    if draw(st.booleans()):  # a total that did not change may come as null: message_start's stands
        final_usage["input_tokens"] = draw(st.none() | st.integers(0, 5000))
    stop_reason = draw(st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal"]))
    delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": None}
    if stop_reason == "refusal" and draw(st.booleans()):  # the refusal's details, where the API gives them
        delta["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": draw(NAMES)}
    events.append({"type": "message_delta", "delta": delta, "usage": final_usage})
    events.append({"type": "message_stop"})

    runs: list[tuple[PartKind, str]] = []
    calls: dict[int, ToolCall] = {}
    thinking: list[ThinkingBlock] = []
    for event in events:
        if event["type"] == "content_block_start":
            block = event["content_block"]
            if block["type"] == "tool_use":
                calls[event["index"]] = ToolCall(event["index"], block["id"], block["name"], "")
            elif block["type"] == "thinking":
                thinking.append(ThinkingBlock(index=event["index"]))
            elif block["type"] == "redacted_thinking":
                thinking.append(ThinkingBlock(data=block["data"], index=event["index"]))
            runs.append(("text", block.get("text", "")))
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                runs.append(("text", delta["text"]))
            elif delta["type"] == "thinking_delta":
                runs.append(("reasoning", delta["thinking"]))
                thinking[-1] = replace(thinking[-1], text=thinking[-1].text + delta["thinking"])
            elif delta["type"] == "signature_delta":
                thinking[-1] = replace(thinking[-1], signature=delta["signature"])
            else:
                call = calls[event["index"]]
                calls[event["index"]] = ToolCall(call.index, call.id, call.name, call.arguments + delta["partial_json"])
    updated = {**usage, **{name: value for name, value in final_usage.items() if value is not None}}
    expected = response_of(
        runs,
        anthropic_chunks(events),
        tool_calls=[calls[index] for index in sorted(calls)],
        finish_reason=stop_reason,
        usage=updated,
        response_id=message["id"],
        thinking=thinking,
        stop_details=delta.get("stop_details"),
    )
    frames = tuple(SSEEvent(orjson.dumps(event).decode(), event["type"]) for event in events)
    return Stream("anthropic", frames, expected, tuple(events))


# --- OpenAI Responses ------------------------------------------------------------------------

RESPONSES_ITEMS: st.SearchStrategy[Item] = st.one_of(
    st.builds(Message, PIECES),
    st.builds(Message, PIECES.filter(bool), st.just(True)),  # a refusal says something
    st.builds(Reasoning, st.lists(PIECES, max_size=2), st.lists(PIECES, max_size=2), st.none() | st.text(max_size=8)),
    st.builds(
        FunctionCall,
        NAMES.map(lambda name: f"call_{name}"),
        NAMES,
        ARGUMENTS.flatmap(split_anywhere),
    ),
)


@st.composite
def responses_streams(draw: st.DrawFn) -> Stream:
    """An OpenAI Responses stream, one JSON text per event numbered from 0: created, in_progress,
    messages (text or a refusal), reasoning (summary and reasoning text), function calls with
    their arguments split anywhere, and completed or incomplete with or without usage."""
    # a call_id names one call: the openai SDK refuses a response whose calls share one
    items = draw(st.lists(RESPONSES_ITEMS, max_size=3, unique_by=lambda item: getattr(item, "call_id", id(item))))
    status = draw(st.sampled_from(["completed", "incomplete"]))
    usage = draw(
        st.none() | st.fixed_dictionaries({"input_tokens": st.integers(0, 9999), "output_tokens": st.integers(0, 9999)})
    )
    events = response_events(items, status=status, usage=usage, response_id="resp_0123")
    runs: list[tuple[PartKind, str]] = []
    calls: list[ToolCall] = []
    refusal = ""
    thinking: list[ThinkingBlock] = []
    for output_index, item in enumerate(items):
        if isinstance(item, Message):
            if item.refusal:
                refusal += "".join(item.pieces)
            else:
                runs += [("text", piece) for piece in item.pieces]
        elif isinstance(item, Reasoning):
            pieces = [piece for part in (*item.summary, *item.content) for piece in part]
            runs += [("reasoning", piece) for piece in pieces]
            done = events[-1]["response"]["output"][output_index]  # the item as its output_item.done gives it
            thinking.append(ThinkingBlock("".join(pieces), index=output_index, item=orjson.dumps(done).decode()))
        else:
            calls.append(ToolCall(output_index, item.call_id, item.name, "".join(item.pieces)))
    expected = response_of(
        runs,
        len(events),  # every event is a chunk, at its sequence number
        tool_calls=calls,
        refusal=refusal,
        finish_reason="completed" if status == "completed" else "max_output_tokens",
        usage=usage,
        response_id="resp_0123",
        thinking=thinking,
    )
    return Stream("responses", tuple(orjson.dumps(event).decode() for event in events), expected, tuple(events))


def streams(*, multimodal: bool = True) -> st.SearchStrategy[Stream]:
    """A valid stream of any protocol rxstream reads."""
    return st.one_of(chunk_streams(multimodal=multimodal), chat_streams(), anthropic_streams(), responses_streams())
