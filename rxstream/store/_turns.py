"""A turn as a row: the one encoding every store writes and reads, column by column.

Each store keeps the same columns in the same order (``FIELDS``) and hands its rows to
``decode``. A new field of ``Response`` is added here once, then as a column (and a
migration) in each store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import orjson

from ..core._context_store import ToolResult, Turn
from ..core._errors import CorruptStoreError, InvalidTurnError
from ..core._values import Part, Response, Stats, ThinkingBlock, ToolCall

EMPTY = Response("", True, 0)  # a tool turn's response: the model said nothing in it

# What a row holds after the session id, the turn's number and when it was saved, in order.
FIELDS = (
    "complete",
    "text",
    "reasoning",
    "finish_reason",
    "chunks",
    "parts",
    "stats",
    "refusal",
    "tool_calls",
    "reasoning_signatures",
    "thinking",
    "request",
    "tool_results",
)


def encode(
    response: Response, request: Mapping[str, Any] | None = None, tool_results: Sequence[ToolResult] = ()
) -> tuple[Any, ...]:
    """``response`` and the ``request`` that asked for it (or a tool turn's ``tool_results``) as the
    values of ``FIELDS``: strings as they are, the structured fields as JSON bytes (the request None
    when it is not known, the results None for the model's turn).

    Raises ``InvalidTurnError`` if a string in it is not valid Unicode (a lone surrogate),
    which no store could write and read back as it was.
    """
    try:
        for name in ("text", "reasoning", "finish_reason", "refusal"):
            value = getattr(response, name)
            if value is not None:
                value.encode()
        return (
            response.complete,
            response.text,
            response.reasoning,
            response.finish_reason,
            response.chunks,
            orjson.dumps([[part.kind, part.value] for part in response.parts]),
            orjson.dumps(asdict(response.stats)),
            response.refusal,
            orjson.dumps([[call.index, call.id, call.name, call.arguments] for call in response.tool_calls]),
            orjson.dumps(response.reasoning_signatures),  # for earlier versions reading the same database
            orjson.dumps(
                [[block.text, block.signature, block.data, block.index, block.item] for block in response.thinking]
            ),
            None if request is None else orjson.dumps(request),
            orjson.dumps([[result.call_id, result.content, result.is_error] for result in tool_results])
            if tool_results
            else None,
        )
    except (UnicodeEncodeError, orjson.JSONEncodeError) as error:
        raise InvalidTurnError(response, str(error)) from error


def decode(session_id: str, number: int, saved_at: float, values: Sequence[Any], *, store: str) -> Turn:
    """The turn whose ``FIELDS`` are ``values`` (strings as ``str`` or as UTF-8 bytes, JSON as bytes or text).

    Raises ``CorruptStoreError`` naming ``store`` if they do not make a ``Response``.
    """
    try:
        (
            complete,
            text,
            reasoning,
            finish_reason,
            chunks,
            parts,
            stats,
            refusal,
            tool_calls,
            signatures,
            thinking,
            request,
            tool_results,
        ) = values
        reasoning = as_text(reasoning)
        if thinking is None:  # saved before blocks were kept
            blocks = legacy_thinking(reasoning, orjson.loads(signatures))
        else:
            blocks = tuple(ThinkingBlock(*block) for block in orjson.loads(thinking))
        response = Response(
            as_text(text),
            bool(complete),
            chunks,
            tuple(Part(kind, value) for kind, value in orjson.loads(parts)),
            Stats(**orjson.loads(stats)),
            reasoning,
            None if finish_reason is None else as_text(finish_reason),
            tuple(ToolCall(*call) for call in orjson.loads(tool_calls)),
            None if refusal is None else as_text(refusal),
            blocks,
        )
        sent = None if request is None else orjson.loads(request)
        results = () if tool_results is None else tuple(ToolResult(*result) for result in orjson.loads(tool_results))
    except (TypeError, ValueError) as error:  # orjson's decode error and UnicodeDecodeError are ValueErrors
        raise CorruptStoreError(
            store, f"turn {number} of session {session_id!r:.80} cannot be read: {error}"
        ) from error
    return Turn(session_id, number, response, saved_at, sent, results)


def tool_turn(session_id: str, results: Sequence[ToolResult]) -> Turn:
    """The turn, yet unnumbered, of the tools' ``results``: its response empty, its results a tuple.

    Raises ``ValueError`` if there are none (the turn would read back as the model's).
    """
    results = tuple(results)
    if not results or not all(isinstance(result, ToolResult) for result in results):
        raise ValueError(f"tool results must be one ToolResult or more, not {results!r:.80}")
    return Turn(session_id, 0, EMPTY, 0.0, None, results)


def legacy_thinking(reasoning: str, signatures: list[str]) -> tuple[ThinkingBlock, ...]:
    """The thinking of a turn saved before blocks were kept: its text joined, its signatures apart.

    One signature pairs with the whole text; of several, which went with which text is lost,
    so the text stands alone and each signature as a block of its own, in order.
    """
    if len(signatures) == 1:
        return (ThinkingBlock(reasoning, signatures[0]),)
    text = (ThinkingBlock(reasoning),) if reasoning else ()
    return text + tuple(ThinkingBlock("", signature) for signature in signatures)


def as_text(value: str | bytes) -> str:
    """A string column's value: stores whose text type cannot hold every string (PostgreSQL's
    refuses NUL) keep it as UTF-8 bytes."""
    return value.decode() if isinstance(value, bytes) else value
