"""The receive path's hot loop, sans I/O: whole messages out of the bytes a WebSocket server sends.

websockets parses each frame through a chain of generators, an enum lookup and a dataclass:
about 2.7 µs a frame here, more than the rest of the pipeline together. Nearly every frame of
a stream is a whole message, unmasked, without extensions (compression is off), and such a
frame needs only its header read. ``FrameReader`` reads those itself and hands every other
frame whole and in order (pings, pongs, the close frame, the pieces of a fragmented message) to
websockets' own protocol, which stays the judge of what is valid and answers what needs an
answer. A header websockets would refuse (a masked frame, a payload above ``max_size``) hands it
the rest of the stream: it fails the connection with the right close code.
"""

from __future__ import annotations

from collections.abc import Callable

WHOLE_TEXT = 0x81  # FIN and the text opcode, no reserved bits
WHOLE_BINARY = 0x82
FIN = 0x80
OPCODE = 0x0F
LAST_DATA_OPCODE = 0x2  # continuation 0, text 1, binary 2; control frames are 8 and above
MASKED = 0x80  # in the second byte; then the 7-bit length follows
RESERVED = 0x70  # RSV1-3: no extension is negotiated, so a frame with any set is refused
KNOWN_OPCODES = frozenset({0x0, 0x1, 0x2, 0x8, 0x9, 0xA})


class FrameReader:
    """Splits a server's bytes into frames: whole messages to ``messages``, all else to ``other``.

    ``messages`` takes the whole messages of one read together, in a list, so that whoever
    takes them can loop over them in one call; ``other`` takes a whole frame (after the
    messages before it) and answers whether the connection is still open for this reader;
    once it answers no, it takes every byte that follows as it comes. Memory is bounded: at
    most one incomplete frame of at most ``max_size`` bytes waits here.
    """

    __slots__ = ("messages", "other", "max_size", "pending", "needed", "fragmented", "passing")

    def __init__(
        self, messages: Callable[[list[bytes]], None], other: Callable[[bytes], bool], max_size: int | None
    ) -> None:
        self.messages = messages
        self.other = other
        self.max_size = max_size if max_size is not None else 2**64
        self.pending = bytearray()  # the start of a frame that has not fully arrived
        self.needed = 0  # how long ``pending`` must grow before that frame can be read further
        self.fragmented = False  # inside a fragmented message, whose frames all go to ``other``
        self.passing = False  # ``other`` takes every byte: the connection is closing or failed

    def feed(self, data: bytes) -> None:
        if self.passing:
            self.other(data)
            return
        pending = self.pending
        if pending:
            pending += data  # amortized: a large frame arriving in many reads is copied once
            if len(pending) < self.needed:
                return
            data = bytes(pending)
            pending.clear()
        messages: list[bytes] = []
        max_size = self.max_size
        end = len(data)
        position = 0
        while True:
            if end - position < 2:
                needed = 2
                break
            first = data[position]
            length = data[position + 1]
            if first != WHOLE_TEXT and first != WHOLE_BINARY and refused(first):
                # websockets fails the connection from the header alone: it has the rest at once
                self.pass_on(messages, data[position:])
                return
            start = position + 2
            if length > 125:
                if length & MASKED:  # a server must not mask: websockets fails the connection
                    self.pass_on(messages, data[position:])
                    return
                start += 2 if length == 126 else 8
                if start > end:
                    needed = start - position
                    break
                if length == 126:  # most chunks: two bytes, read without int.from_bytes' slice and call
                    length = data[position + 2] << 8 | data[position + 3]
                else:
                    length = int.from_bytes(data[position + 2 : start], "big")
            if length > max_size:  # websockets answers 1009 from the header alone
                self.pass_on(messages, data[position:])
                return
            stop = start + length
            if stop > end:
                needed = stop - position
                break
            if (first == WHOLE_TEXT or first == WHOLE_BINARY) and not self.fragmented:
                messages.append(data[start:stop])
            else:
                if messages:
                    self.messages(messages)
                    messages = []
                if (first & OPCODE) <= LAST_DATA_OPCODE:
                    self.fragmented = not first & FIN
                if not self.other(data[position:stop]):
                    self.pass_on([], data[stop:])
                    return
            position = stop
        if position < end:
            pending += data[position:]
        self.needed = needed
        if messages:
            self.messages(messages)

    def stop(self) -> None:
        """Read no more frames: what is pending, and every byte from now on, goes to ``other``."""
        self.pass_on([], bytes(self.pending))

    def pass_on(self, messages: list[bytes], rest: bytes) -> None:
        """Hand ``messages`` on, then ``rest`` and all that follows to ``other``."""
        self.passing = True
        self.pending.clear()
        if messages:
            self.messages(messages)
        if rest:
            self.other(rest)


def refused(first: int) -> bool:
    """Whether websockets refuses a frame from its first byte alone, without waiting for the
    payload: reserved bits set (no extension is negotiated) or an unknown opcode."""
    return bool(first & RESERVED) or first & OPCODE not in KNOWN_OPCODES
