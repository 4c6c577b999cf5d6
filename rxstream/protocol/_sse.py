"""Server-Sent Events, sans I/O: bytes in, however the network cut them, events out.

Follows the WHATWG event-stream rules: lines end in LF, CRLF or CR; a leading BOM is
dropped; lines starting with ``:`` are comments (keep-alives); ``data`` lines accumulate,
joined by newlines; an event is dispatched only on a blank line. A CR ends its line at
once (an LF opening the next read is then its CRLF's); at the end of the input (``end``)
an event not ended by a blank line is discarded, never dispatched. ``retry`` is ASCII
digits only, at most ``RETRY_DIGITS`` of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import chain, repeat
from typing import NamedTuple


class SSEEvent(NamedTuple):
    """One dispatched event. ``id`` is the last event id in force when it was dispatched."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


_new_event = tuple.__new__  # the C constructor, not the named tuple's Python one: once per event

# A line ends at CRLF, LF or CR; CRLF first, so that it is one line end and not two.
_LINE_END = re.compile(rb"\r\n|\r|\n")
# WHATWG: a retry field of ASCII digits only; longer than this it is no usable reconnection time (and
# int() refuses more than 4,300 digits), so it is ignored like any other invalid value.
RETRY_DIGITS = 10


class SSEDecoder:
    """Feed it bytes with ``feed``; it returns the events they complete.

    Linear in the input however it is cut: each read is scanned once for line ends (in C,
    by ``bytes.split`` or a regular expression), complete lines are taken off the front of the
    buffer at once, and the line still open is never scanned again. ``data`` lines stay bytes
    until their event is dispatched, then are decoded once, joined. A run of events of one
    ``data:`` line each, without CR (as OpenAI sends them), is split on its blank lines at once.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()  # the line still open: no line end in it
        self._started = False
        self._after_cr = False  # the last read ended in CR: an LF opening the next is that CRLF's
        self._data: list[bytes] = []
        self._data_size = 0
        self._event = b""
        self._retry: int | None = None
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._after_cr:
            self._after_cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        buffer = self._buffer
        if not self._started:
            buffer += chunk
            if len(buffer) < 3 and b"\xef\xbb\xbf".startswith(buffer):
                return []  # maybe a BOM, cut short
            self._started = True
            if buffer.startswith(b"\xef\xbb\xbf"):
                del buffer[:3]
            chunk = bytes(buffer)
            buffer.clear()
        # Only the new bytes can hold a line end: the open line held none.
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last == -1:
            buffer += chunk
            return []
        if chunk[last] == 0x0D and last + 1 == len(chunk):  # the read ends in CR: its LF may open the next
            self._after_cr = True
        head = chunk if last + 1 == len(chunk) else chunk[: last + 1]  # most reads end where a line does
        if buffer:
            head = bytes(buffer) + head
            buffer.clear()
        if head is not chunk:
            buffer += chunk[last + 1 :]
        events: list[SSEEvent] = []
        if b"\r" in head:
            lines = _LINE_END.split(head)
            lines.pop()  # the empty piece after the last line end
            self._lines(lines, events)
        else:
            self._blocks(head, events)
        return events

    def _blocks(self, head: bytes, events: list[SSEEvent]) -> None:
        """Complete lines ending in LF, none in CR: runs of events of one shape at once (``_runs``), the
        rest line by line. A read that starts inside an event (its id line came in the last) has that
        event read line by line first."""
        rest = self._runs(head, events)
        if rest is head:
            first = head.find(b"\n\n") + 2
            if first > 1:
                lines = head[:first].split(b"\n")
                lines.pop()
                self._lines(lines, events)
                rest = self._runs(head[first:], events)
        if rest:
            lines = rest.split(b"\n")
            lines.pop()  # the empty piece after the last line end
            self._lines(lines, events)

    def _runs(self, head: bytes, events: list[SSEEvent]) -> bytes:
        """Events of one ``data: …`` line each (OpenAI's), or of an ``id: …`` or ``event: …`` line and one
        ``data: …`` line each (a resumable server's, the Responses API's), split at once on the blank
        lines, in C, from the start of ``head`` to its last blank line: what is left (all of ``head``
        when it starts otherwise, or an event is under way)."""
        end = head.rfind(b"\n\n") + 2  # the events that blank lines end; the rest is an event under way
        if end > 1 and not (self._data or self._event or self._retry is not None):
            if head.startswith(b"data: "):
                values = head[6 : end - 2].split(b"\n\ndata: ")
                if head.count(b"\n", 0, end) == 2 * len(values):  # no LF in any: one line an event
                    last_event_id = self.last_event_id
                    events += [
                        _new_event(SSEEvent, (value.decode("utf-8", "replace"), "message", last_event_id, None))
                        for value in values
                    ]
                    return head[end:]
            elif head.startswith((b"id: ", b"event: ")) and b"\0" not in head[:end]:
                field = b"id: " if head[0] == 0x69 else b"event: "
                lines = head[:end].split(b"\n")
                lines.pop()  # the empty piece after the last line end
                # two lines and a blank one an event (the last line, blank, falls among the firsts or the data otherwise)
                firsts, data, blanks = lines[0::3], lines[1::3], lines[2::3]
                if (
                    not any(blanks)
                    and all(map(bytes.startswith, firsts, repeat(field)))
                    and all(map(bytes.startswith, data, repeat(b"data: ")))
                ):
                    skip = len(field)
                    given = [first[skip:].decode("utf-8", "replace") for first in firsts]
                    if field == b"id: ":
                        self.last_event_id = given[-1]
                        events += [
                            _new_event(SSEEvent, (line[6:].decode("utf-8", "replace"), "message", event_id, None))
                            for line, event_id in zip(data, given, strict=True)
                        ]
                    else:
                        last_event_id = self.last_event_id
                        events += [
                            _new_event(
                                SSEEvent,
                                (line[6:].decode("utf-8", "replace"), name or "message", last_event_id, None),
                            )
                            for line, name in zip(data, given, strict=True)
                        ]
                    return head[end:]
        return head

    def _lines(self, lines: list[bytes], events: list[SSEEvent]) -> None:
        """Complete lines, line ends removed: fields kept, events dispatched on blank lines into ``events``."""
        data = self._data
        for line in lines:
            if line.startswith(b"data:"):  # most lines
                value = line[6:] if line[5:6] == b" " else line[5:]
                data.append(value)
                self._data_size += len(value)
            elif line:
                self._field(line)
            else:  # a blank line: dispatch
                if data:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    name = self._event.decode("utf-8", "replace") if self._event else "message"
                    events.append(SSEEvent(joined.decode("utf-8", "replace"), name, self.last_event_id, self._retry))
                    self._data = data = []
                    self._data_size = 0
                self._event, self._retry = b"", None

    def end(self) -> list[SSEEvent]:
        """The input ended: whatever is held is discarded, never dispatched (an event not ended by a blank line).

        A CR at the very end has already ended its line, as it does anywhere else.
        """
        self._buffer.clear()
        self._data, self._data_size, self._event, self._retry = [], 0, b"", None
        self._after_cr = False
        return []

    @property
    def pending(self) -> int:
        """Bytes held for an event not complete yet: what a size limit must watch."""
        return len(self._buffer) + self._data_size

    def _field(self, line: bytes) -> None:
        """A line that is neither blank nor ``data: …``: a comment, or another field."""
        if line[0] == 0x3A:  # ':' a comment
            return
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if name == b"data":  # "data" alone, or "data:" cut by the partition above: an empty data line
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id" and b"\0" not in value:
            self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit() and len(value) <= RETRY_DIGITS:  # bytes.isdigit: ASCII digits only
            self._retry = int(value)


def sse_events(body: Iterable[bytes]) -> Iterator[SSEEvent]:
    """The events of a whole body given in pieces (a recording, a file): ``feed`` each, then ``end``.

    For ``from_frames(sse_events(pieces)).pipe(sse_pipeline())``, the in-memory twin of ``from_sse``.
    """
    decoder = SSEDecoder()
    # chained in C: a generator would resume its frame for every event
    return chain.from_iterable(chain(map(decoder.feed, body), _ended(decoder)))


def _ended(decoder: SSEDecoder) -> Iterator[list[SSEEvent]]:
    """``decoder.end()``, called once the body is read."""
    yield decoder.end()


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
