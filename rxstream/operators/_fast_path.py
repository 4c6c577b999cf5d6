"""The fused pipeline's fast path: a plain chunk from its frame to the transcript in one loop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from orjson import loads

from ..core._demand import BatchObserver
from ..core._transcript import COMPACT_EVERY
from ..core._values import Chunk
from ._accumulate import AccumulateStage
from ._backpressure_buffer import BufferStage
from ._finalize import FinalizeStage
from ._parse import ParseStage, Payload, _new_chunk
from ._reorder import ReorderStage


class FastPath(BatchObserver[Payload]):
    """What the fused pipeline subscribes to its source: takes a plain chunk from its frame to
    the transcript, on the stages' own state.

    Most chunks are plain text, and for them the pipeline's work is bookkeeping: parse
    checks and counts the frame, reorder notes the index or holds the chunk, the buffer
    passes it through, accumulate appends the text and finalize waits for the last one.
    Doing that here, in one loop over the frames a source has at hand (``on_next_batch``),
    spares building a Chunk and a Delta and six calls per chunk. A plain chunk that comes
    early is held as its data alone, and an in-order arrival delivers the held ones it
    releases the same way. Anything else (a frame that is not a plain chunk, a duplicate, a
    chunk beyond the window, a queue in the buffer, the first or the last chunk) goes to
    parse, or from parse's point on, the ordinary way. tests/test_pipeline.py checks that
    the two ways give the same result.
    """

    def __init__(
        self,
        parse: ParseStage,
        reorder: ReorderStage,
        buffer: BufferStage[Any],
        accumulate: AccumulateStage,
        finalize: FinalizeStage,
    ) -> None:
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
        self.upstream = parse.shared.upstream

    def on_next(self, frame: Payload) -> None:
        self.on_next_batch(iter((frame,)))

    def on_next_batch(self, frames: Iterator[Payload]) -> bool:
        """Take frames while each is a plain chunk that stops at the transcript or in reorder's
        hold; pass the first that does not on the ordinary way and return True, so that the
        source sees to demand and disposal before it gives more. False once ``frames`` is done.

        Nothing the fast path does reaches past the stages, so the state it reads stays
        as it is while it loops: it keeps it in locals and writes it back when it leaves.
        """
        stats = self.stats
        reorder = self.reorder
        held = self.held
        window = self.window
        delivered = self.delivered
        pending = self.pending_text
        consumer = self.consumer
        queue = self.queue
        # Past the first chunk, which starts finalize's timer. (Once the stream has ended, what
        # still arrives changes nothing either way: the response is out.)
        started = self.finalize.transcript is not None
        upstream = self.upstream
        next_index = reorder.next_index
        final_index = reorder.final_index
        count = size = early = appended = 0
        depth = stats.reorder_depth
        released: Chunk | str = ""
        try:
            for frame in frames:
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
                    break
                # parse's bookkeeping, as ParseStage.on_next does it
                count += 1
                size += (
                    len(frame.encode("utf-8", "surrogatepass"))
                    if type(frame) is str and not frame.isascii()
                    else len(frame)
                )
                released = data
                if index == next_index:
                    # Only if the buffer would pass it through. The consumer's demand is read
                    # for every chunk: the iterable a source reads from may be what changes it.
                    if not started or not (consumer is None or (consumer.ready and not queue)):
                        break
                    if held and len(held) > depth:  # held only grows between releases: it is deepest before one
                        depth = len(held)
                    # reorder's deliver and drain, accumulate and transcript.append, for this
                    # chunk and the held ones after it while they are plain
                    while isinstance(released, str):
                        if index < window:
                            delivered.append(released)
                        else:
                            delivered[index % window] = released
                        index += 1
                        appended += 1
                        pending.append(released)
                        if not held or index not in held:
                            break
                        released = held.pop(index)
                    next_index = index
                    if len(pending) >= COMPACT_EVERY:
                        self.rope.compact()
                    if not isinstance(released, str):  # a held chunk that is not plain: the ordinary way
                        break
                elif (
                    index > next_index
                    and index not in held
                    and index - next_index < window
                    and (final_index is None or index < final_index)
                ):
                    # reorder.hold, for a plain chunk that it would simply hold
                    held[index] = data
                    early += 1
                else:
                    break
                if upstream.is_disposed:  # the iterable itself, or another thread, disposed the subscription
                    return True
            else:
                return False
        finally:
            stats.chunks += count
            stats.bytes += size
            stats.out_of_order += early
            stats.reorder_depth = max(depth, len(held))
            self.transcript.chunks += appended
            reorder.next_index = next_index
        if not plain:
            self.parse.on_next(frame)
        elif isinstance(released, str):
            self.parse.emit(
                _new_chunk(Chunk, (index, data, False, timestamp, None, None, None, None, None, None, None, None))
            )
        else:
            reorder.deliver(released)
            reorder.drain()
        return True

    def on_error(self, error: Exception) -> None:
        self.parse.on_error(error)

    def on_completed(self) -> None:
        self.parse.on_completed()
