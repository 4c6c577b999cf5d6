"""What a server's error body says: its message, type and code, in the shapes providers send.

OpenAI (and the APIs copying it: DeepSeek, OpenRouter, vLLM) answer
``{"error": {"message", "type", "code", "param"}}``; Anthropic ``{"type": "error", "error":
{"type", "message"}}``; vLLM and others also put ``message``/``type``/``code`` at the top level, and
FastAPI servers ``{"detail": "…"}``. Anything else that is text is the message itself, but an HTML
page, whose text would be markup.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from orjson import JSONDecodeError, loads


class ErrorReport(NamedTuple):
    """The parts of an error body; each None where the body gave none."""

    message: str | None = None
    type: str | None = None
    code: str | None = None


def read_error_body(body: str) -> ErrorReport:
    """The message, type and code ``body`` (a prefix of an error response's body) reports."""
    text = body.strip()
    if not text:
        return ErrorReport()
    try:
        parsed: Any = loads(text)
    except JSONDecodeError:
        return ErrorReport() if text.startswith("<") else ErrorReport(message=text)
    if not isinstance(parsed, dict):
        return ErrorReport()
    inner = parsed.get("error")
    if isinstance(inner, str):  # {"error": "…"}, as some proxies and Ollama answer
        return ErrorReport(message=inner)
    fields = inner if isinstance(inner, dict) else parsed
    message = _text(fields.get("message")) or _text(parsed.get("detail"))
    return ErrorReport(message=message, type=_text(fields.get("type")), code=_text(fields.get("code")))


def _text(value: object) -> str | None:
    """A field as text: a string as it is, a number (OpenRouter's ``"code": 400``) written out, else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
