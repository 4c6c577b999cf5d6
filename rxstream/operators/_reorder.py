"""reorder: chunks in index order from 0, within a bounded window, duplicates dropped."""

from __future__ import annotations

from reactivex import abc

from ..core._errors import InvalidChunkError
from ..core._stage import Operator, Shared, Stage
from ..core._values import Chunk


class ReorderStage(Stage[Chunk, Chunk]):
    def __init__(self, downstream: abc.ObserverBase[Chunk], shared: Shared, window: int) -> None:
        super().__init__(downstream, shared)
        self.window = window
        self.next_index = 0
        self.final_index: int | None = None
        # Chunks that came early, by index. The pipeline's fast path holds a plain chunk as
        # its data alone; ``release`` makes it a Chunk again if it leaves the ordinary way.
        self.held: dict[int, Chunk | str] = {}
        # The chunks delivered lately, in index order, the last being chunk next_index - 1: the
        # last `window` of them at least (all, until there are that many; see ``forget``), enough to tell a resent duplicate
        # from a conflicting one without keeping the whole stream. It grows as chunks are
        # delivered, so a huge window costs nothing up front. A plain chunk the pipeline's
        # fast path delivered is kept as its data alone.
        self._delivered: list[Chunk | str] = []
        shared.resume.position = lambda: self.next_index

    def on_next(self, chunk: Chunk) -> None:
        index = chunk.index
        if index == self.next_index:
            if chunk.is_final and self.held:
                self.fail(InvalidChunkError(index, max(self.held), f"it came before final chunk {index}"))
                return
            self.deliver(chunk)
            self.drain()
        elif index < self.next_index:
            behind = self.next_index - index
            self.drop_duplicate(chunk, self._delivered[-behind] if behind <= self.window else None)
        else:
            self.hold(chunk)

    def drain(self) -> None:
        """Deliver the held chunks that now follow on."""
        held = self.held
        while held and not self.stopped and self.next_index in held:
            self.deliver(self.release(self.next_index))

    def release(self, index: int) -> Chunk:
        """Take held chunk ``index`` out, as a Chunk."""
        chunk = self.held.pop(index)
        return Chunk(index, chunk) if isinstance(chunk, str) else chunk

    def deliver(self, chunk: Chunk) -> None:
        self.record(chunk.index, chunk)
        self.emit(chunk)
        if chunk.is_final:
            self.complete()

    def record(self, index: int, chunk: Chunk) -> None:
        """Note chunk ``index`` as delivered."""
        delivered = self._delivered
        delivered.append(chunk)
        self.next_index = index + 1
        if len(delivered) > 2 * self.window:
            self.forget()

    def record_run(self, run: list[str]) -> None:
        """Note plain chunks up to ``next_index``, given by their data, as delivered: the
        record of the chunks the fast path delivered without a Chunk (it moves ``next_index``)."""
        delivered = self._delivered
        delivered += run
        if len(delivered) > 2 * self.window:
            self.forget()

    def forget(self) -> None:
        """Keep the last ``window`` delivered chunks, all a duplicate can be compared with: trimmed
        once they are twice that, the list costs a chunk O(1) and at most twice the window."""
        del self._delivered[: -self.window]

    def drop_duplicate(self, chunk: Chunk, earlier: Chunk | str | None) -> None:
        if isinstance(earlier, str):
            same = chunk.plain and chunk.data == earlier
        else:
            same = earlier is None or earlier.same_content(chunk)
        if not same:
            self.fail(InvalidChunkError(self.next_index, chunk.index, "it repeats an index with different content"))
            return
        self.shared.stats.duplicates += 1

    def hold(self, chunk: Chunk) -> None:
        # rxstream.pipeline's FastPath holds a plain chunk that passes every check below, and
        # releases held plain chunks as drain does, inline (a call costs it more than these
        # do: benchmarks/README.md); tests/test_pipeline.py compares the two ways.
        index = chunk.index
        if index in self.held:
            self.drop_duplicate(chunk, self.held[index])
            return
        if self.final_index is not None and index > self.final_index:
            self.fail(InvalidChunkError(self.next_index, index, f"it comes after the final chunk {self.final_index}"))
            return
        if index - self.next_index >= self.window:
            if self.request_again():
                return
            self.fail(InvalidChunkError(self.next_index, index, f"it is beyond the reorder window of {self.window}"))
            return
        if chunk.is_final:
            if any(other > index for other in self.held):
                self.fail(InvalidChunkError(self.next_index, max(self.held), f"it came before final chunk {index}"))
                return
            self.final_index = index
        self.held[index] = chunk
        stats = self.shared.stats
        stats.out_of_order += 1
        if len(self.held) > stats.reorder_depth:
            stats.reorder_depth = len(self.held)

    def request_again(self) -> bool:
        """Ask a source that can re-request the stream to resume from the gap (protocol 40002's remedy)."""
        restart = self.shared.resume.restart
        if restart is None or not restart(self.next_index):
            return False
        self.held.clear()  # the source resends from next_index; what was held comes again
        return True

    def on_completed(self) -> None:
        if self.held and not self.stopped:
            self.fail(
                InvalidChunkError(self.next_index, None, f"{len(self.held)} later chunks are held behind the gap")
            )
        else:
            self.complete()


def reorder(window: int = 64) -> Operator[Chunk, Chunk]:
    """Emit chunks in index order from 0, holding at most ``window`` of them.

    .. marble::
        :alt: reorder

        -1--0--0--3--2--|
        [   reorder()    ]
        ----(01)-----(23|)

        -0--2--|
        [ reorder() ]
        -0-----#

    The digits are chunk indices, ``3`` the final chunk. The second ``0`` is a resent
    duplicate: dropped and counted in ``Stats.duplicates``. Once the final chunk and all
    before it are delivered, reorder completes without waiting for upstream, and stops it.
    In the second diagram upstream completes with chunk 1 missing: ``InvalidChunkError``.
    Memory is bounded by ``window``, never by index values.

    Args:
        window: The most chunks held while waiting for an earlier one; a chunk ``window``
            or more beyond the next expected index cannot be held.

    Returns:
        An operator that takes an observable of ``Chunk``s and returns an observable of the
        same chunks, each once, in index order.

    Raises:
        ValueError: (at the call) ``window`` is below 1.
        InvalidChunkError: (to the observer, ending the stream; protocol code 40002) a
            duplicate with different content, a chunk beyond the window (unless the source
            can request the stream again from the gap), a chunk after the final one, or an
            upstream that completes with a gap.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    return Operator(lambda downstream, shared: ReorderStage(downstream, shared, window))
