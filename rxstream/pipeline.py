"""The five operators composed: frames in, one ``Response`` out."""

from __future__ import annotations

import time
from typing import Any

from orjson import loads
from reactivex import abc

from . import operators as rxo
from .model import Chunk, Response
from .operators.accumulate import AccumulateStage
from .operators.backpressure_buffer import BufferStage, Overflow
from .operators.finalize import Clock, FinalizeStage
from .operators.parse import Frame, ParseStage, _new_chunk
from .operators.reorder import ReorderStage
from .stage import Operator, fuse
from .transcript import COMPACT_EVERY


class ExpressLane(abc.ObserverBase[Frame]):
    """What the fused pipeline subscribes to its source: takes a plain chunk from its frame to
    the transcript, on the stages' own state.

    Most chunks are plain text, and for them the pipeline's work is bookkeeping: parse
    checks and counts the frame, reorder notes the index or holds the chunk, the buffer
    passes it through, accumulate appends the text and finalize waits for the last one.
    Doing that here, in one call, spares building a Chunk and a Delta and five calls per
    chunk. A plain chunk that comes early is held as its data alone, and an in-order
    arrival delivers the held ones it releases the same way. Anything else (a frame that is
    not a plain chunk, a duplicate, a chunk beyond the window, a queue in the buffer, the
    first or the last chunk) goes to parse, or from parse's point on, the ordinary way.
    tests/test_pipeline.py checks that the two ways give the same result.
    """

    def __init__(self, parse: ParseStage, reorder: ReorderStage, buffer: BufferStage[Any], accumulate: AccumulateStage, finalize: FinalizeStage) -> None:
        self.parse = parse
        self.stats = parse.stats
        self.reorder = reorder
        self.held = reorder.held
        self.window = reorder.window
        self.delivered = reorder.delivered
        self.queue = buffer.queue
        self.consumer = buffer.consumer
        self.transcript = accumulate.transcript
        self.rope = accumulate.transcript.text_rope
        self.pending_text = accumulate.transcript.text_rope.pending
        self.finalize = finalize

    def on_next(self, frame: Frame) -> None:
        try:
            message = loads(frame)
            body = message["chunk"]
            index = body["index"]
            data = body["data"]
            timestamp = message.get("timestamp")
            plain = (
                body["is_final"] is False
                and type(index) is int
                and index >= 0
                and type(data) is str
                and len(body) == 3
                and (timestamp is None or type(timestamp) is int)
            )
        except (ValueError, LookupError, TypeError, AttributeError):  # orjson's JSONDecodeError is a ValueError
            plain = False
        if not plain:
            self.parse.on_next(frame)
            return
        # parse's bookkeeping, as ParseStage.on_next does it
        stats = self.stats
        stats.chunks += 1
        stats.bytes += len(frame.encode("utf-8", "surrogatepass")) if type(frame) is str and not frame.isascii() else len(frame)
        reorder = self.reorder
        next_index = reorder.next_index
        if index == next_index:
            consumer = self.consumer
            # The buffer would pass it through, and it is not the first chunk, which starts
            # finalize's clock. (Once the stream has ended, what still arrives changes nothing
            # either way: the response is out.)
            if (consumer is None or (consumer.ready and not self.queue)) and self.finalize.transcript is not None:
                # reorder's deliver and drain, accumulate and transcript.append, inline (this is
                # every chunk's path), for this chunk and the held ones after it while they are plain
                window = self.window
                delivered = self.delivered
                held = self.held
                transcript = self.transcript
                pending = self.pending_text
                while True:
                    if index < window:
                        delivered.append(data)
                    else:
                        delivered[index % window] = data
                    index += 1
                    transcript.chunks += 1
                    if data:
                        pending.append(data)
                        if len(pending) >= COMPACT_EVERY:
                            self.rope.compact()
                    if not held or index not in held:
                        reorder.next_index = index
                        return
                    chunk = held.pop(index)
                    if isinstance(chunk, str):
                        data = chunk
                        continue
                    reorder.next_index = index
                    reorder.deliver(chunk)
                    reorder.drain()
                    return
        elif index > next_index:
            # reorder.hold, for a plain chunk that it would simply hold
            held = self.held
            final_index = reorder.final_index
            if index not in held and index - next_index < self.window and (final_index is None or index < final_index):
                held[index] = data
                stats.out_of_order += 1
                if len(held) > stats.reorder_depth:
                    stats.reorder_depth = len(held)
                return
        self.parse.emit(_new_chunk(Chunk, (index, data, False, timestamp, None, None, None, None, None)))

    def on_error(self, error: Exception) -> None:
        self.parse.on_error(error)

    def on_completed(self) -> None:
        self.parse.on_completed()


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

    def head(self, stages: list[Any]) -> abc.ObserverBase[Frame]:
        return ExpressLane(*stages)
