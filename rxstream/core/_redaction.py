"""Keeping the bearer token out of what rxstream reports: peer text in errors, and library logs.

A peer may echo the token it was sent (in a close reason, a response header, the status
line, a redirect, an error event), and websockets and httpx log headers and status lines.
Wherever such text reaches an error message or a log record it goes through the
``Secrets`` of the stream: every token the stream sent, so a token callable that gives
each connection a new one is covered too.
"""

from __future__ import annotations

import logging
import re
import traceback
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

REDACTED = "[redacted]"
# A secret shorter than this is matched only as a whole word: replaced wherever it occurs, a two-letter
# token would mangle every word holding those letters ("[redacted]ept"), and shows nothing when it does.
SHORT = 4


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, terminal escapes, bidi
    controls: what could split an error's line or disguise it) made a space."""
    return text if text.isprintable() else "".join(character if character.isprintable() else " " for character in text)


class Secrets:
    """The tokens one stream has sent, on every connection; nothing rxstream reports may show them."""

    __slots__ = ("values", "_short")

    def __init__(self) -> None:
        self.values: list[str] = []  # longest first, so that a token containing another is redacted whole
        self._short: re.Pattern[str] | None = None  # the short ones, each as a whole word

    def add(self, token: str) -> None:
        for value in (token, quote(token, safe="")):  # as sent, and as a URL (a redirect's Location) carries it
            if value and value not in self.values:
                self.values.append(value)
                self.values.sort(key=len, reverse=True)
        short = [rf"(?<!\w){re.escape(value)}(?!\w)" for value in self.values if len(value) < SHORT]
        self._short = re.compile("|".join(short)) if short else None

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``[redacted]``; ``text`` itself when it shows none."""
        for value in self.values:
            if len(value) >= SHORT and value in text:
                text = text.replace(value, REDACTED)
        if self._short is not None:
            text = self._short.sub(REDACTED, text)
        if self.shown_in(text):  # a secret made of the marker's characters, rebuilt by it
            return ""
        return text

    def shown_in(self, text: str) -> bool:
        """Whether ``text`` shows a secret: a long one anywhere, a short one as a whole word."""
        return any(len(value) >= SHORT and value in text for value in self.values) or (
            self._short is not None and self._short.search(text) is not None
        )

    def peer_text(self, text: str) -> str:
        """Text the peer chose (a close reason, a header, a status line), fit to quote in an error: one line, no secret."""
        return self.redact(one_line(text))

    def revealed_by(self, error: BaseException) -> bool:
        """Whether ``error``'s traceback, with its whole chain, would show a secret."""
        return self.shown_in("".join(traceback.format_exception(error)))


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """``logger`` for a library that logs what crosses the wire (websockets logs every header at debug):
    each record's message is formatted and redacted before it exists, so no handler sees a secret."""

    def __init__(self, logger: logging.Logger, secrets: Secrets) -> None:
        super().__init__(logger)
        self.secrets = secrets

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            kwargs.setdefault("stacklevel", 2)  # the record names the library's line, not this one
            self.logger.log(level, self.secrets.redact(str(msg) % args if args else str(msg)), **kwargs)


_in_force: ContextVar[Secrets | None] = ContextVar("rxstream_secrets_in_force", default=None)


class _RedactInForce(logging.Filter):
    """Redacts a record with the secrets of the stream whose task logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _in_force.get()
        if secrets is not None:
            message = record.getMessage()
            redacted = secrets.redact(message)
            if redacted is not message:
                record.msg, record.args = redacted, ()
        return True


_REDACT_IN_FORCE = _RedactInForce()
# httpx logs each status line (INFO), httpcore each response's headers (DEBUG), hpack the headers it encodes (DEBUG).
HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack.hpack",
)


def redact_http_logs(secrets: Secrets) -> None:
    """Keep ``secrets`` out of httpx's, httpcore's and hpack's records for the rest of the calling task.

    They log on module loggers and take no logger per client, so a filter on each (added
    once) redacts with the secrets the current task set: a stream's requests all run in
    its own task.
    """
    for name in HTTP_LOGGERS:
        logging.getLogger(name).addFilter(_REDACT_IN_FORCE)
    _in_force.set(secrets)
