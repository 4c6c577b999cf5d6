"""The fused pipeline's fast path: a plain chunk from its frame to the transcript in one loop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from orjson import loads

from ..core._demand import BatchObserver
from ..core._values import PLAIN_TAIL, Chunk
from ._accumulate import AccumulateStage
from ._backpressure_buffer import BufferStage
from ._finalize import FinalizeStage
from ._parse import ParseStage, Payload, _new_chunk
from ._reorder import ReorderStage

# Chunks the fast path delivers before it hands them over to reorder and the transcript: it
# keeps their data in a list of its own until then, and this bounds the list over a long
# batch. What the stages do with them (reorder's window, the rope's compaction) is theirs.
HAND_OVER_EVERY = 256


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

    What the stages keep, they keep: the fast path collects the data of the chunks it
    delivers, in index order, and hands the run to ``ReorderStage.record_run`` and
    ``Transcript.extend`` (every ``HAND_OVER_EVERY`` chunks, and before anything goes the
    ordinary way or the stream ends), so the window of delivered chunks and the rope's
    compaction are reorder's and the transcript's alone; parse's counts of chunks and bytes
    are made then too, over the frames taken. Three things it still does inline, each also
    done by its stage, because a call per frame costs more than the loop can spare (measured
    in benchmarks/README.md, "The fast path contained"): parse's plain-frame check, and
    reorder's simple hold and its release of held plain chunks.
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
        self.queue = buffer.queue
        self.consumer = buffer.consumer
        self.transcript = accumulate.transcript
        self.finalize = finalize
        self.upstream = parse.shared.upstream
        # The data of the chunks delivered since they were last handed to reorder and the
        # transcript, in index order, up to reorder.next_index. They are handed over before
        # anything goes the ordinary way (so the stages find their state whole when they act)
        # and every HAND_OVER_EVERY, not whenever the loop ends: a source that pushes one frame
        # a call would pay the hand-over for each.
        self.run: list[str] = []
        # The frames taken since the last hand-over, for parse's counts: counting them then, over
        # the list, spares each frame a type check and two sums (benchmarks/README.md, row 1).
        self.taken: list[Payload] = []

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
        held = reorder.held
        pop = held.pop
        window = reorder.window
        run = self.run
        deliver = run.append
        consumer = self.consumer
        queue = self.queue
        # Past the first chunk, which starts finalize's timer. (Once the stream has ended, what
        # still arrives changes nothing either way: the response is out.)
        started = self.finalize.transcript is not None
        upstream = self.upstream
        next_index = reorder.next_index
        final_index = reorder.final_index
        take = self.taken.append
        due = next_index - len(run) + HAND_OVER_EVERY  # the index at which the run is handed over
        held_before = len(held)
        released_count = 0  # plain chunks released from the hold in this call
        depth = stats.reorder_depth
        stuck: Chunk | None = None  # a held chunk, not plain, that is next: reorder delivers it
        plain = True  # until a frame is not a plain chunk
        kind, integer, text, size = type, int, str, len  # locals: a builtin's global lookup costs ~30 instructions
        try:
            for frame in frames:
                # parse's check for a plain chunk, as ParseStage.on_next makes it, inline: calling
                # a function shared with parse would cost ~40-110 ns a frame (benchmarks/README.md)
                # (An ``if`` rather than a boolean kept in a variable: then each comparison jumps as it
                # is made, which CPython 3.11 specializes for ints.)
                try:
                    message = loads(frame)
                    body = message["chunk"]
                    index = body["index"]
                    data = body["data"]
                    try:  # a subscript in a try costs a frame less than message.get's call (~60 instructions)
                        stamp = message["timestamp"]
                    except KeyError:
                        stamp = 0  # none, as valid as an int
                    if not (
                        body["is_final"] is False
                        and kind(index) is integer
                        and kind(data) is text
                        and size(body) == 3
                        and kind(stamp) is integer  # (a null one goes the ordinary way)
                    ):
                        plain = False
                        break
                except (ValueError, LookupError, TypeError, AttributeError):  # orjson's JSONDecodeError is a ValueError
                    plain = False
                    break
                take(frame)  # counted at the hand-over
                if index == next_index:
                    # Only if the buffer would pass it through. The consumer's demand is read
                    # for every chunk: the iterable a source reads from may be what changes it.
                    if not started or not (consumer is None or (consumer.ready and not queue)):
                        break
                    deliver(data)
                    next_index += 1
                    if held:
                        # reorder's drain, while the held chunks are plain (inline, as the hold below):
                        # a pop a chunk, whose default ends the run (no held chunk is None)
                        released = pop(next_index, None)
                        if released is not None:
                            if len(held) >= depth:  # held only grows between releases: it is deepest before one
                                depth = len(held) + 1
                            first = next_index
                            while type(released) is str:
                                deliver(released)
                                next_index += 1
                                released = pop(next_index, None)
                            released_count += next_index - first
                            if released is not None:
                                stuck = cast(Chunk, released)
                                break
                    if next_index >= due:
                        self.hand_over()
                        due = next_index + HAND_OVER_EVERY
                elif (
                    index > next_index
                    and index not in held
                    and index - next_index < window
                    and (final_index is None or index < final_index)
                ):
                    # reorder.hold, for a plain chunk that it would simply hold: inline, since
                    # most frames of a shuffled stream come here and a call would cost them ~10-70 ns
                    held[index] = data
                else:
                    break
                if upstream.is_disposed:  # the iterable itself, or another thread, disposed the subscription
                    return True
            else:
                return False
        finally:
            # the chunks this call held: what the hold grew by and what left it (counted once a run, not a chunk)
            stats.out_of_order += released_count + len(held) - held_before + (stuck is not None)
            stats.reorder_depth = max(depth, len(held))
            reorder.next_index = next_index
        if plain and index < 0:  # parse's check left out of the loop, where no index below next_index is taken
            self.taken.pop()
            plain = False
        self.hand_over()  # the stages take it from here
        if not plain:
            self.parse.on_next(frame)
        elif stuck is not None:
            reorder.deliver(stuck)
            reorder.drain()
        else:
            self.parse.emit(_new_chunk(Chunk, (index, data, False, message.get("timestamp"), *PLAIN_TAIL)))
        return True

    def hand_over(self) -> None:
        """Note the chunks delivered so far with reorder, add their text to the transcript and
        the frames taken to parse's counts (as ParseStage.on_next counts each)."""
        run = self.run
        if run:
            self.reorder.record_run(run)
            self.transcript.extend(run)
            run.clear()
        taken = self.taken
        if taken:
            self.stats.chunks += len(taken)
            self.stats.bytes += byte_count(taken)
            taken.clear()

    def on_error(self, error: Exception) -> None:
        self.hand_over()
        self.parse.on_error(error)

    def on_completed(self) -> None:
        self.hand_over()
        self.parse.on_completed()


def byte_count(frames: list[Payload]) -> int:
    """The frames' size as parse counts it (a str's in UTF-8), over the list at once where it can:
    orjson keeps the UTF-8 of a non-ASCII str it reads, and leaves no lone surrogate in it."""
    try:
        return len(b"".join(frames))  # type: ignore[arg-type]  # one call, not a len and an add a frame
    except TypeError:
        pass  # str frames among them
    try:
        text = "".join(frames)  # type: ignore[arg-type]
    except TypeError:  # str and bytes mixed
        return sum(
            len(frame.encode("utf-8", "surrogatepass")) if type(frame) is str and not frame.isascii() else len(frame)
            for frame in frames
        )
    return len(text) if text.isascii() else sum(map(len, map(str.encode, frames)))  # type: ignore[arg-type]
