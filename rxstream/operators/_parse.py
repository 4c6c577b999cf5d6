"""parse: raw protocol frames (str or bytes) into validated ``Chunk``s."""

from __future__ import annotations

from typing import Any

import orjson
from reactivex import abc

from ..core._errors import FrameError, shown
from ..core._stage import Operator, Shared, Stage
from ..core._values import Chunk

Payload = str | bytes
_new_chunk = tuple.__new__  # Chunk's own __new__ is Python code; this builds the same tuple at C speed


def decode_chunk(message: Any) -> Chunk:
    """A ``Chunk`` from a decoded frame, or ``ValueError`` naming the field that is wrong."""
    if type(message) is not dict:
        raise ValueError("the frame is not a JSON object")
    body = message.get("chunk")
    if type(body) is not dict:
        raise ValueError("field 'chunk' is missing or not an object")
    index = body.get("index")
    if type(index) is not int or index < 0:  # bool is an int subclass: the exact type check rejects it
        raise ValueError(f"field 'chunk.index' must be a non-negative integer, not {shown(index)}")
    data = body.get("data", "")
    if type(data) is not str:
        raise ValueError("field 'chunk.data' must be a string")
    is_final = body.get("is_final", False)
    if type(is_final) is not bool:
        raise ValueError("field 'chunk.is_final' must be true or false")
    timestamp = message.get("timestamp")
    if timestamp is not None and type(timestamp) is not int:
        raise ValueError("field 'timestamp' must be an integer")
    text = body.get("text")
    image_url = body.get("image_url")
    if (text is not None and type(text) is not str) or (image_url is not None and type(image_url) is not str):
        raise ValueError("fields 'chunk.text' and 'chunk.image_url' must be strings")
    return _new_chunk(
        Chunk, (index, data, is_final, timestamp, text, image_url, None, None, None, None, None, None, None)
    )


class ParseStage(Stage[Payload, Chunk]):
    def __init__(self, downstream: abc.ObserverBase[Chunk], shared: Shared) -> None:
        super().__init__(downstream, shared)
        self.stats = shared.stats
        self.chunks_before = shared.stats.chunks

    @property
    def frame_number(self) -> int:
        """The number of the frame being parsed: a bad frame ends the stream, so every frame
        before it was a chunk (counting them apart would cost every frame an increment)."""
        return self.stats.chunks - self.chunks_before + 1

    def on_next(self, frame: Payload) -> None:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError as error:  # also raised for a frame that is not str or bytes
            self.fail(
                FrameError(frame, f"invalid JSON ({error})", number=self.frame_number, secrets=self.shared.secrets)
            )
            return
        try:
            # The common shape, checked inline; anything else takes decode_chunk's field-by-field path.
            # rxstream.pipeline's FastPath repeats this check for a plain chunk, inline, and counts
            # the stats below over the frames it took (byte_count): keep them in step
            # (tests/test_pipeline.py compares the two ways). Not a function both call: the calls
            # would cost the fast path 5-16% (benchmarks/README.md).
            body = message["chunk"]
            index = body["index"]
            data = body["data"]
            is_final = body["is_final"]
            timestamp = message.get("timestamp")
            common = (
                type(index) is int
                and index >= 0
                and type(data) is str
                and type(is_final) is bool
                and len(body) == 3
                and (timestamp is None or type(timestamp) is int)
            )
        except (LookupError, TypeError, AttributeError):
            common = False
        if common:
            chunk = _new_chunk(
                Chunk, (index, data, is_final, timestamp, None, None, None, None, None, None, None, None, None)
            )
        else:
            try:
                chunk = decode_chunk(message)
            except ValueError as error:
                self.fail(FrameError(frame, str(error), number=self.frame_number, secrets=self.shared.secrets))
                return
        stats = self.stats
        stats.chunks += 1
        # str.isascii is O(1) in CPython: only non-ASCII text frames pay for encoding to count bytes
        stats.bytes += (
            len(frame.encode("utf-8", "surrogatepass")) if type(frame) is str and not frame.isascii() else len(frame)
        )
        self.emit(chunk)


def parse() -> Operator[Payload, Chunk]:
    """Decode each protocol frame with orjson and validate it into a ``Chunk``.

    .. marble::
        :alt: parse

        -a--b--x--|
        [  parse() ]
        -A--B--#

    ``a`` and ``b`` are frames (str or bytes), ``A`` and ``B`` their chunks; ``x`` is a
    frame that is not a protocol message, so the stream ends there with ``FrameError`` and
    parse stops its upstream. Fields the protocol does not define are ignored.

    Returns:
        An operator that takes an observable of frames and returns an observable of the
        ``Chunk`` each one holds, in the order they came. It counts ``Stats.chunks`` and
        ``Stats.bytes``.

    Raises:
        FrameError: (to the observer, ending the stream) a frame that is not valid JSON,
            lacks ``chunk``, or has a field of the wrong type; the error names the field,
            the frame's number, and quotes the frame (with the source's tokens redacted).
    """
    return Operator(ParseStage)
