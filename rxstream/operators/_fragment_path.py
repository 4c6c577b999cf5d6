"""The fused SSE pipeline's fragment path: a tool call's argument fragment from parse_sse to its call's
arguments, a plain text delta to the transcript; and the parse stages' base that feeds it."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import Any, TypeVar

from reactivex import abc

from ..core._demand import BatchObserver
from ..core._stage import Shared, Stage
from ..core._values import PLAIN_TAIL, Chunk
from ._accumulate import AccumulateStage
from ._backpressure_buffer import BufferStage
from ._fast_path import HAND_OVER_EVERY
from ._finalize import FinalizeStage
from ._reorder import ReorderStage

_In = TypeVar("_In")


class FragmentPath:
    """What ``parse_sse`` hands, in ``sse_pipeline``, the chunk of an event that is one common
    argument fragment and nothing else: every fragment of a call after its first, as
    OpenAI-compatible servers send them, and most events of a tool call.

    For such a chunk the stages below parse only keep their books: reorder notes it as
    delivered, the buffer passes it through, accumulate adds the arguments to their call and
    finalize waits for the last chunk. ``take`` does that on the stages' own state, sparing a
    Delta and the calls from stage to stage, whenever they would do no more; otherwise (a chunk
    reorder would not deliver now, a queue in the buffer, a call whose first fragment has not
    come, a stream that has ended) parse emits the chunk the ordinary way. Plain text deltas take
    the same shortcut (``take_text``), parse_sse's common one without a Chunk (``take_plain``).
    tests/test_fragment_path.py checks that the two ways give the same result.
    """

    __slots__ = ("reorder", "held", "queue", "consumer", "transcript", "calls", "finalize", "run")

    def __init__(
        self, reorder: ReorderStage, buffer: BufferStage[Any], accumulate: AccumulateStage, finalize: FinalizeStage
    ) -> None:
        self.reorder = reorder
        self.held = reorder.held
        self.queue = buffer.queue
        self.consumer = buffer.consumer
        self.transcript = accumulate.transcript
        self.calls = accumulate.transcript.calls_so_far
        self.finalize = finalize
        # The text of the deltas take_plain took since they were last handed to reorder and the
        # transcript, in index order, up to reorder.next_index; handed over before anything else
        # reaches the stages, and every HAND_OVER_EVERY, as pipeline()'s fast path does.
        self.run: list[str] = []

    def take(self, chunk: Chunk) -> bool:
        """Whether it took ``chunk``, a lone fragment with no id or name, where the stages below would have."""
        self.hand_over()
        reorder = self.reorder
        consumer = self.consumer
        if (
            chunk.index != reorder.next_index
            or self.held
            or self.queue  # the buffer passes a chunk on with nothing queued and the consumer ready
            or not (consumer is None or consumer.ready)
            or self.finalize.stopped
        ):
            return False
        ((call, _, _, arguments, _),) = chunk.tool_calls  # type: ignore[misc]  # one fragment, parse_sse says
        so_far = self.calls.get(call)
        if so_far is None:
            # Transcript.add starts a call. (Once one has started, accumulate has passed finalize
            # a chunk, so that the first chunk, which starts finalize's timer, always goes the ordinary way.)
            return False
        # Transcript.add, for this one fragment; then reorder.deliver, for a chunk that is not final with nothing held
        self.transcript.chunks += 1
        if arguments:
            so_far.arguments.append(arguments)
        reorder.record(chunk.index, chunk)
        return True

    def take_plain(self, index: int, text: str) -> bool:
        """``take_text`` for a plain text delta given by its index and text, without a Chunk: parse_sse's
        common text, whose index is its position, so that reorder never compares a later one with it.
        It joins the run, which ``hand_over`` gives the stages."""
        reorder = self.reorder
        consumer = self.consumer
        finalize = self.finalize
        if (
            index != reorder.next_index
            or self.held
            or self.queue
            or not (consumer is None or consumer.ready)
            or finalize.transcript is None
            or finalize.stopped
        ):
            return False
        run = self.run
        run.append(text)
        reorder.next_index = index + 1
        if len(run) >= HAND_OVER_EVERY:
            self.hand_over()
        return True

    def hand_over(self) -> None:
        """Note the deltas ``take_plain`` took with reorder and add their text to the transcript: before
        anything else reaches the stages (``take``, ``take_text``, parse_sse's chunks and ending)."""
        run = self.run
        if run:
            self.reorder.record_run(run)
            self.transcript.extend(run)
            run.clear()

    def take_text(self, chunk: Chunk) -> bool:
        """Whether it took ``chunk``, if a plain text delta (``Chunk.plain``), where the stages below would have.

        The same books as ``take``, for the most common event of all: reorder notes the chunk,
        the buffer passes it through, accumulate appends its text, finalize waits. It spares a
        Delta and four calls an event (~0.5 µs of ~5.6 in memory, benchmarks/README.md).
        """
        self.hand_over()
        reorder = self.reorder
        consumer = self.consumer
        finalize = self.finalize
        if (
            chunk[4:] != PLAIN_TAIL
            or chunk.is_final
            or chunk.index != reorder.next_index
            or self.held
            or self.queue  # the buffer passes a chunk on with nothing queued and the consumer ready
            or not (consumer is None or consumer.ready)
            or finalize.transcript is None  # the first chunk starts finalize's timer: the ordinary way
            or finalize.stopped
        ):
            return False
        self.transcript.append(chunk.data)
        reorder.record(chunk.index, chunk)
        return True


class EventParseStage(Stage[_In, Chunk], BatchObserver[_In]):
    """What parse_sse's and parse_responses' stages share: events taken one at a time or a read's
    batch at a time, and the fused pipeline's fragment path (``fragment_path``), which their
    chunks go through and which is handed over before the stream ends."""

    def __init__(self, downstream: abc.ObserverBase[Chunk], shared: Shared) -> None:
        super().__init__(downstream, shared)
        self.events = 0
        self.fragment_path: FragmentPath | None = None  # the fused pipeline's, past the stages it fuses

    def on_next(self, item: _In) -> None:
        self.take(item)

    def on_next_batch(self, items: Iterator[_In]) -> bool:
        """Take events while the fragment path takes their text; after any other, True, so that the
        source sees to demand and disposal before it gives more (as for one event at a time)."""
        take = self.take
        upstream = self.shared.upstream
        for item in items:
            if not take(item) or upstream.is_disposed:
                return True
        return False

    @abstractmethod
    def take(self, item: _In) -> bool:
        """Parse ``item`` and pass its chunk on: whether the fragment path took it (its text went
        straight to the transcript, nothing else happened below)."""

    def pass_on(self, chunk: Chunk) -> None:
        """Count ``chunk`` and give it to the fragment path, or the ordinary way to the stages below."""
        self.shared.stats.chunks += 1
        if self.fragment_path is None or not self.fragment_path.take_text(chunk):
            self.emit(chunk)

    def fail(self, error: Exception) -> None:
        if self.fragment_path is not None:
            self.fragment_path.hand_over()
        super().fail(error)

    def complete(self) -> None:
        if self.fragment_path is not None:
            self.fragment_path.hand_over()
        super().complete()
