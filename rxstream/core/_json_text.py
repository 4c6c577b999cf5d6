"""JSON that arrives as text: whole (a finished tool call's arguments) or still growing (best effort).

One reader for both, jiter (the parser both official SDKs use for partial JSON), with one set
of rules: integers of any size stay exact; ``NaN`` and ``Infinity`` are not JSON and are
refused; a number beyond a double's range (``1e999``) is valid JSON and reads as an infinite
float, as Python's ``json`` reads it; text that is not valid Unicode (a lone surrogate) is refused.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import jiter

from ._errors import InvalidJSONError

PartialMode = Literal["off", "on", "trailing-strings"]
_WHERE = re.compile(r" at line (\d+) column (\d+)$")  # how jiter says where, in bytes


def parse_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object; empty text is an empty object (a call without arguments)."""
    if not text:
        return {}
    return _object(_read(text, what, "off"), text, what)


def partial_object(text: str, what: str, trailing_strings: bool) -> dict[str, Any]:
    """``partial_json`` of ``text``, which must be (the start of) a JSON object; ``{}`` before anything."""
    value = _read(text, what, "trailing-strings" if trailing_strings else "on")
    return {} if value is None else _object(value, text, what)


def _object(value: Any, text: str, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise InvalidJSONError(what, text, f"a JSON {type(value).__name__}, not an object")
    return value


def partial_json(text: str | bytes, *, trailing_strings: bool = False) -> Any:
    """The best-effort parse of JSON that may be cut short: what is complete so far, or None for blank text.

    jiter's partial mode (the parser both official SDKs use): containers still open are
    closed, a value cut short is left out, and so is a string cut short unless
    ``trailing_strings`` keeps what arrived of it. Text that could not begin valid JSON
    raises ``InvalidJSONError``; so does text that is not valid Unicode. The rules are
    ``ToolCall.parsed()``'s: big integers exact, no ``NaN`` or ``Infinity``.
    """
    return _read(text, "partial JSON", "trailing-strings" if trailing_strings else "on")


def _read(text: str | bytes, what: str, mode: PartialMode) -> Any:
    """The value of ``text`` by the rules above; None for blank text in a partial mode."""
    if isinstance(text, str):
        try:
            data = text.encode()
        except UnicodeEncodeError as error:
            raise InvalidJSONError(what, text, "not valid Unicode (a lone surrogate)", error.start) from None
    else:
        data = text
    if mode != "off" and not data.strip():
        return None
    try:
        return jiter.from_json(data, partial_mode=mode, allow_inf_nan=False)
    except ValueError as error:
        message = str(error)
        where = _WHERE.search(message)
        reason = message if where is None else message[: where.start()]
        shown = data.decode("utf-8", "replace")
        raise InvalidJSONError(what, shown, reason, _position(data, where, reason)) from error


def _position(data: bytes, where: re.Match[str] | None, reason: str) -> int | None:
    """The character where jiter's error is: the end for text cut short, else its line and byte column."""
    if where is None:
        return None
    if reason.startswith("EOF"):
        offset = len(data)
    else:
        line, column = int(where[1]), int(where[2])
        start = 0
        for _ in range(line - 1):
            start = data.index(b"\n", start) + 1
        offset = min(start + column - 1, len(data))
    return len(data[:offset].decode("utf-8", "replace"))
