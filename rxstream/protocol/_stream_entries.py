"""A published stream's entries, sans I/O: each delta's chunk as string fields, the terminal entry, and back.

Every entry carries ``n``, its place in the stream from 0, so that a reader can tell an entry
trimmed away (``MAXLEN``) from one never written. The final delta's entry is also the
terminal one (``end=done``, with the response's length); a stream that failed ends with an
entry of its own (``end=error``) naming the error and the partial text's length.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from ..core._errors import FrameError
from ..core._stream_sink import Fields
from ..core._values import PLAIN_TAIL, Chunk, ThinkingBlock, ToolCallFragment


class RecordedFailure(NamedTuple):
    """The terminal entry of a stream whose writer failed: what it recorded."""

    number: int
    error_type: str
    detail: str
    characters: int


def delta_fields(number: int, text: str, chunk: Chunk) -> Fields:
    """The entry of the ``number``-th delta: the ``text`` it added and what else its ``chunk`` carries."""
    fields = {"n": str(number), "text": text}
    if chunk[4:] == PLAIN_TAIL:
        return fields
    _, _, _, _, _, image_url, reasoning, finish_reason, usage, refusal, tool_calls, signature, block = chunk
    if reasoning is not None:
        fields["reasoning"] = reasoning
    if image_url is not None:
        fields["image_url"] = image_url
    if finish_reason is not None:
        fields["finish_reason"] = finish_reason
    if usage is not None:
        fields["usage"] = orjson.dumps(usage).decode()
    if refusal is not None:
        fields["refusal"] = refusal
    if tool_calls is not None:
        fields["tool_calls"] = orjson.dumps([list(fragment) for fragment in tool_calls]).decode()
    if signature is not None:
        fields["signature"] = signature
    if block is not None:
        fields["thinking_block"] = orjson.dumps(
            [block.text, block.signature, block.data, block.index, block.item]
        ).decode()
    return fields


def done_fields(fields: Fields, characters: int) -> Fields:
    """The final delta's entry marked as the stream's end, with the whole text's length."""
    return {**fields, "end": "done", "characters": str(characters)}


def failure_fields(number: int, error_type: str, detail: str, characters: int) -> Fields:
    """The terminal entry of a stream that ended with an error (its class name, its message) after
    ``characters`` characters of text."""
    return {
        "n": str(number),
        "end": "error",
        "error_type": error_type,
        "detail": detail,
        "characters": str(characters),
    }


def read_entry(fields: Mapping[str, str]) -> Chunk | RecordedFailure:
    """The chunk an entry carries (numbered ``n``, final at ``end=done``), or the failure it records.

    Raises:
        FrameError: the entry is not one ``publish`` writes (another writer's stream, or a
            field of the wrong type).
    """
    try:
        number = int(fields["n"])
        end = fields.get("end")
        if end == "error":
            return RecordedFailure(number, fields["error_type"], fields["detail"], int(fields["characters"]))
        tool_calls = fields.get("tool_calls")
        usage = fields.get("usage")
        block = fields.get("thinking_block")
        return Chunk(
            number,
            fields["text"],
            end == "done",
            None,
            None,
            fields.get("image_url"),
            fields.get("reasoning"),
            fields.get("finish_reason"),
            None if usage is None else _object(usage),
            fields.get("refusal"),
            None if tool_calls is None else tuple(ToolCallFragment(*entry) for entry in orjson.loads(tool_calls)),
            fields.get("signature"),
            None if block is None else ThinkingBlock(*orjson.loads(block)),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise FrameError(
            dict(fields), f"not an entry rxstream.publish writes ({type(error).__name__}: {error})"
        ) from error


def _object(text: str) -> dict[str, Any]:
    value = orjson.loads(text)
    if not isinstance(value, dict):
        raise TypeError("usage must be a JSON object")
    return value
