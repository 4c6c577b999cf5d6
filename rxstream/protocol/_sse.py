"""Server-Sent Events, sans I/O: bytes in, however the network cut them, events out.

Follows the WHATWG event-stream rules: lines end in LF, CRLF or CR; a leading BOM is
dropped; lines starting with ``:`` are comments (keep-alives); ``data`` lines accumulate,
joined by newlines; an event is dispatched only on a blank line. At the end of the input
(``end``) a trailing CR still ends its line, and an event not ended by a blank line is
discarded, never dispatched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple


class SSEEvent(NamedTuple):
    """One dispatched event. ``id`` is the last event id in force when it was dispatched."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes with ``feed``; it returns the events they complete."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._retry: int | None = None
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk
        if not self._started:
            if len(buffer) < 3 and b"\xef\xbb\xbf".startswith(buffer):
                self._buffer = buffer  # maybe a BOM, cut short
                return []
            self._started = True
            buffer = buffer.removeprefix(b"\xef\xbb\xbf")
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = _line_end(buffer, start)
            if end is None:
                break
            line_end, next_start = end
            self._line(buffer[start:line_end].decode("utf-8", "replace"), events)
            start = next_start
        self._buffer = buffer[start:]
        return events

    def end(self) -> list[SSEEvent]:
        """The input ended: the event this completes, if any; whatever else is held is discarded.

        Only a line held back for the LF of a possible CRLF is still complete (a CR ends a
        line); if it is the blank line of an event, that event is dispatched.
        """
        events: list[SSEEvent] = []
        if self._buffer.endswith(b"\r"):
            self._line(self._buffer[:-1].decode("utf-8", "replace"), events)
        self._buffer = b""
        self._data, self._event, self._retry = [], "", None
        return events

    @property
    def pending(self) -> int:
        """Bytes held for an event not complete yet: what a size limit must watch."""
        return len(self._buffer) + sum(len(data) for data in self._data)

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(
                    SSEEvent("\n".join(self._data), self._event or "message", self.last_event_id, self._retry)
                )
            self._data, self._event, self._retry = [], "", None
            return
        if line.startswith(":"):
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)


def _line_end(buffer: bytes, start: int) -> tuple[int, int] | None:
    """Where the line from ``start`` ends and the next begins, or None if it is not complete yet."""
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf != -1 else len(buffer))
    if cr != -1:
        if cr + 1 == len(buffer):
            return None  # a CR at the end: the LF of a CRLF may be in the next read
        return cr, cr + 2 if buffer[cr + 1 : cr + 2] == b"\n" else cr + 1
    if lf != -1:
        return lf, lf + 1
    return None


def sse_events(body: Iterable[bytes]) -> Iterator[SSEEvent]:
    """The events of a whole body given in pieces (a recording, a file): ``feed`` each, then ``end``.

    For ``from_frames(sse_events(pieces)).pipe(sse_pipeline())``, the in-memory twin of ``from_sse``.
    """
    decoder = SSEDecoder()
    for piece in body:
        yield from decoder.feed(piece)
    yield from decoder.end()


class SSEEncoder:
    """Events to ``text/event-stream`` bytes, as ``SSEDecoder`` and a browser's ``EventSource`` read them.

    Data is written one ``data:`` line per line of it, so a line break of any kind (LF, CRLF, CR)
    comes back as LF, the only change a round trip makes. Note that a browser dispatches no
    event whose data is empty (``SSEDecoder`` does): give each event some data.
    """

    def encode(self, data: str, *, event: str | None = None, id: str | None = None) -> bytes:
        """One event: its ``event`` type (omitted for ``message``), its ``id`` (the reader's Last-Event-ID), its data.

        Raises:
            ValueError: ``event`` or ``id`` holds a line break, or ``id`` a NUL, which the reader would
                not read back.
        """
        lines = []
        if event and event != "message":
            lines.append(f"event: {_one_line(event, 'an event type')}")
        if id is not None:
            if "\0" in id:
                raise ValueError("an event id cannot hold a NUL: the reader would ignore it")
            lines.append(f"id: {_one_line(id, 'an event id')}")
        lines.extend(f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
        return ("\n".join(lines) + "\n\n").encode()

    def retry(self, milliseconds: int) -> bytes:
        """The time a reader waits before reconnecting: no event, only the field."""
        if milliseconds < 0:
            raise ValueError("the reconnection time cannot be negative")
        return f"retry: {milliseconds}\n\n".encode()

    def comment(self, text: str = "") -> bytes:
        """A comment line (a keep-alive): readers skip it, proxies see the connection is in use."""
        return f": {_one_line(text, 'a comment')}\n\n".encode()


def _one_line(value: str, what: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"{what} cannot hold a line break: {value!r}")
    return value
