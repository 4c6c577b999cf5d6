"""OpenAI Responses stream events as the API sends them, built from what the response should hold.

Written from the event types of the openai SDK (``openai.types.responses``), independently of
rxstream's parser and server, so that tests of either have a peer of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class Message:
    """An assistant message: its text in ``pieces`` (one delta each), or a refusal."""

    pieces: Sequence[str]
    refusal: bool = False


@dataclass(frozen=True)
class Reasoning:
    """A reasoning item: summary parts, each in pieces, the reasoning text parts (open models), each
    in pieces, and its encrypted reasoning (``include: ["reasoning.encrypted_content"]``)."""

    summary: Sequence[Sequence[str]]
    content: Sequence[Sequence[str]] = ()
    encrypted_content: str | None = None  # what the done item carries when the request includes it


@dataclass(frozen=True)
class FunctionCall:
    """A function call: its arguments' JSON text in ``pieces`` (one delta each)."""

    call_id: str
    name: str
    pieces: Sequence[str]  # of the arguments


Item = Message | Reasoning | FunctionCall


@dataclass
class Events:
    """Builds one response's events in order, numbering them from ``start``."""

    response_id: str = "resp_0123"
    start: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, "sequence_number": self.start + len(self.events), **fields})

    def response(self, status: str, output: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": 1767225600,
            "model": "gpt-test",
            "status": status,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            **fields,
        }


def response_events(
    items: Sequence[Item],
    *,
    status: str = "completed",
    usage: dict[str, Any] | None = None,
    start: int = 0,
    response_id: str = "resp_0123",
    incomplete_reason: str = "max_output_tokens",
) -> list[dict[str, Any]]:
    """The events of a response made of ``items``, ending as ``status`` says: completed, incomplete or failed."""
    events = Events(response_id, start)
    events.add("response.created", response=events.response("in_progress", []))
    events.add("response.in_progress", response=events.response("in_progress", []))
    done: list[dict[str, Any]] = []
    for output_index, item in enumerate(items):
        done.append(add_item(events, output_index, item))
    ending: dict[str, Any] = {"usage": usage}
    if status == "incomplete":
        ending["incomplete_details"] = {"reason": incomplete_reason}
    if status == "failed":
        ending["error"] = {"code": "server_error", "message": "The model failed to finish."}
    events.add(f"response.{status}", response=events.response(status, done, **ending))
    return events.events


def add_item(events: Events, output_index: int, item: Item) -> dict[str, Any]:
    """The events of one output item; the item as its output_item.done gives it."""
    item_id = f"item_{output_index}"
    where = {"item_id": item_id, "output_index": output_index}
    if isinstance(item, FunctionCall):
        arguments = "".join(item.pieces)
        call = {"type": "function_call", "id": item_id, "call_id": item.call_id, "name": item.name}
        events.add("response.output_item.added", output_index=output_index, item={**call, "arguments": ""})
        for piece in item.pieces:
            events.add("response.function_call_arguments.delta", delta=piece, **where)
        events.add("response.function_call_arguments.done", arguments=arguments, **where)
        finished: dict[str, Any] = {**call, "arguments": arguments, "status": "completed"}
    elif isinstance(item, Reasoning):
        reasoning: dict[str, Any] = {"type": "reasoning", "id": item_id}
        events.add("response.output_item.added", output_index=output_index, item={**reasoning, "summary": []})
        summary = add_parts(events, where, item.summary, "summary_index", "summary_text", "response.reasoning_summary")
        content = add_parts(events, where, item.content, "content_index", "reasoning_text", "response.content")
        finished = {**reasoning, "summary": summary, **({"content": content} if content else {})}
        if item.encrypted_content is not None:
            finished["encrypted_content"] = item.encrypted_content
    else:
        message: dict[str, Any] = {"type": "message", "id": item_id, "role": "assistant"}
        events.add(
            "response.output_item.added",
            output_index=output_index,
            item={**message, "status": "in_progress", "content": []},
        )
        text = "".join(item.pieces)
        key = "refusal" if item.refusal else "text"
        part: dict[str, Any] = (
            {"type": "refusal", "refusal": text} if item.refusal else {"type": "output_text", "text": text}
        )
        if not item.refusal:
            part["annotations"] = []
        empty = {**part, key: ""}
        at = {**where, "content_index": 0}
        events.add("response.content_part.added", part=empty, **at)
        for piece in item.pieces:
            if item.refusal:
                events.add("response.refusal.delta", delta=piece, **at)
            else:
                events.add("response.output_text.delta", delta=piece, logprobs=[], **at)
        if item.refusal:
            events.add("response.refusal.done", refusal=text, **at)
        else:
            events.add("response.output_text.done", text=text, logprobs=[], **at)
        events.add("response.content_part.done", part=part, **at)
        finished = {**message, "status": "completed", "content": [part]}
    events.add("response.output_item.done", output_index=output_index, item=finished)
    return finished


def add_parts(
    events: Events, where: dict[str, Any], parts: Sequence[Sequence[str]], index: str, kind: str, prefix: str
) -> list[dict[str, Any]]:
    """The events of a reasoning item's parts of ``kind``, each in pieces: the parts, as the item's done gives them.

    Summary parts are added and done as ``response.reasoning_summary_part.*``, their text streamed as
    ``response.reasoning_summary_text.*``; reasoning text parts as ``response.content_part.*`` and
    ``response.reasoning_text.*``.
    """
    text_events = "response.reasoning_summary_text" if kind == "summary_text" else "response.reasoning_text"
    done: list[dict[str, Any]] = []
    for number, pieces in enumerate(parts):
        part = {"type": kind, "text": "".join(pieces)}
        at = {**where, index: number}
        events.add(f"{prefix}_part.added", part={**part, "text": ""}, **at)
        for piece in pieces:
            events.add(f"{text_events}.delta", delta=piece, **at)
        events.add(f"{text_events}.done", text=part["text"], **at)
        events.add(f"{prefix}_part.done", part=part, **at)
        done.append(part)
    return done


def encode(events: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each event as the JSON bytes of one WebSocket message (or of an SSE event's data)."""
    return [orjson.dumps(event) for event in events]


def sse_body(events: Sequence[dict[str, Any]], line_end: bytes = b"\n") -> bytes:
    """The events as the API's SSE body sends them: an event line naming the type, the data line, a blank line."""
    return b"".join(
        b"event: " + event["type"].encode() + line_end + b"data: " + orjson.dumps(event) + line_end + line_end
        for event in events
    )
