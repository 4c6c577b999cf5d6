"""The five operators composed: frames in, one ``Response`` out."""

from __future__ import annotations

import time
from typing import Any

from . import operators as rxo
from .model import Chunk, Response
from .operators.accumulate import AccumulateStage
from .operators.backpressure_buffer import BufferStage, Overflow
from .operators.finalize import Clock, FinalizeStage
from .operators.parse import Frame
from .operators.reorder import ReorderStage
from .stage import Operator, fuse


class ExpressLane:
    """Takes a plain chunk that arrives in order straight from parse to the transcript.

    Most chunks are plain text arriving in order, and for them the fused pipeline's work is
    bookkeeping: reorder notes the index, the buffer passes it through, accumulate appends
    the text and finalize waits for the last one. Doing that bookkeeping here, on the
    stages' own state, spares building a Chunk and a Delta and four calls per chunk; the
    held chunks it releases go the same way. Any chunk that needs more (out of order, a
    queue, the first or the last one, an image) goes the ordinary way. tests/test_pipeline.py proves the two ways give the same result.
    """

    def __init__(self, reorder: ReorderStage, buffer: BufferStage[Any], accumulate: AccumulateStage, finalize: FinalizeStage) -> None:
        self.reorder = reorder
        self.buffer = buffer
        self.transcript = accumulate.transcript
        self.append_text = accumulate.transcript.text_rope.append
        self.finalize = finalize

    def take(self, index: int, data: str) -> bool:
        """Take the chunk, or return False for the ordinary way."""
        reorder = self.reorder
        buffer = self.buffer
        if (
            index != reorder.next_index
            or buffer.queue
            or (buffer.consumer is not None and not buffer.consumer.ready)
            or self.finalize.transcript is None  # the first chunk starts finalize's clock
            or self.finalize.stopped
        ):
            return False
        self.append(index, data)
        held = reorder.held
        while held and reorder.next_index in held:  # reorder's drain, by the same lane while it can
            chunk = held.pop(reorder.next_index)
            if not chunk.plain:
                reorder.deliver(chunk)
                reorder.drain()
                break
            self.append(chunk.index, chunk.data, chunk)
        return True

    def append(self, index: int, data: str, chunk: Chunk | None = None) -> None:
        self.reorder.record(index, data if chunk is None else chunk)
        self.transcript.chunks += 1
        if data:
            self.append_text(data)


def pipeline(
    window: int = 64,
    max_pending: int = 5,
    overflow: Overflow = "block",
    clock: Clock = time.perf_counter,
) -> Operator[Frame, Response]:
    """parse → reorder → backpressure_buffer → accumulate → finalize, fused into one operator.

    The same stages as piping the five operators one by one, run inside one subscription,
    with an express lane for the common chunk.
    """
    stages = fuse(
        rxo.parse(),
        rxo.reorder(window),
        rxo.backpressure_buffer(max_pending, overflow),
        rxo.accumulate(),
        rxo.finalize(clock),
    )
    return _WithExpressLane(*stages.factories)


class _WithExpressLane(Operator[Frame, Response]):
    """The fused five, with parse handing plain in-order chunks to an ``ExpressLane``."""

    def connect(self, stages: list[Any]) -> None:
        parse, reorder, buffer, accumulate, finalize = stages
        parse.express = ExpressLane(reorder, buffer, accumulate, finalize).take
