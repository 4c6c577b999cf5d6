"""The response text as it grows: appends in linear time and bounded overhead."""

from __future__ import annotations

from .model import Part, Response, Stats

COMPACT_EVERY = 256


class Transcript:
    """Text and image parts received so far, in index order.

    Appending keeps references to the chunks' own strings and joins every
    ``COMPACT_EVERY`` of them into one, so building the text is linear and a response of
    small chunks does not carry an object header per chunk. ``text`` joins on each call:
    read it once at the end, or follow the deltas.
    """

    __slots__ = ("_pieces", "_pending", "_length", "_images", "chunks")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._pending: list[str] = []
        self._length = 0
        self._images: list[tuple[int, str]] = []  # (text offset it follows, url)
        self.chunks = 0

    def append(self, text: str) -> None:
        """Add one chunk's text (possibly empty)."""
        self.chunks += 1
        if not text:
            return
        pending = self._pending
        pending.append(text)
        self._length += len(text)
        if len(pending) >= COMPACT_EVERY:
            self._pieces.append("".join(pending))
            pending.clear()

    def add_image(self, url: str) -> None:
        self._images.append((self._length, url))

    def __len__(self) -> int:
        return self._length

    @property
    def text(self) -> str:
        return "".join(self._pieces) + "".join(self._pending) if self._pieces else "".join(self._pending)

    @property
    def parts(self) -> tuple[Part, ...]:
        text = self.text
        parts: list[Part] = []
        start = 0
        for offset, url in self._images:
            if offset > start:
                parts.append(Part("text", text[start:offset]))
                start = offset
            parts.append(Part("image", url))
        if start < len(text):
            parts.append(Part("text", text[start:]))
        return tuple(parts)

    def response(self, complete: bool, stats: Stats) -> Response:
        return Response(self.text, complete, self.chunks, self.parts, stats)
