"""JSON that arrives as text: whole (a finished tool call's arguments) or still growing (best effort)."""

from __future__ import annotations

from typing import Any

import jiter
import orjson

from ._errors import InvalidJSONError


def parse_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object; empty text is an empty object (a call without arguments)."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise InvalidJSONError(what, text, error.msg, error.pos) from error
    return _object(value, text, what)


def partial_object(text: str, what: str, trailing_strings: bool) -> dict[str, Any]:
    """``partial_json`` of ``text``, which must be (the start of) a JSON object; ``{}`` before anything."""
    value = _partial(text, what, trailing_strings)
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
    raises ``InvalidJSONError``.
    """
    return _partial(text, "partial JSON", trailing_strings)


def _partial(text: str | bytes, what: str, trailing_strings: bool) -> Any:
    data = text.encode() if isinstance(text, str) else text
    if not data.strip():
        return None
    try:
        return jiter.from_json(data, partial_mode="trailing-strings" if trailing_strings else "on")
    except ValueError as error:  # jiter says where in its message ("at line 1 column 4")
        raise InvalidJSONError(what, data.decode("utf-8", "replace"), str(error)) from error
