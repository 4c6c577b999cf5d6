"""finalize: one ``Response`` on the final chunk, or the partial one with the error that cut it short."""

from __future__ import annotations

import time
from collections.abc import Callable

from reactivex import abc

from ..errors import IncompleteStreamError
from ..model import Response
from ..stage import Link, Operator, Stage
from ..transcript import Transcript
from .accumulate import Delta

Clock = Callable[[], float]


class FinalizeStage(Stage[Delta, Response]):
    def __init__(self, downstream: abc.ObserverBase[Response], link: Link, clock: Clock) -> None:
        super().__init__(downstream, link)
        self.clock = clock
        self.started = clock()
        self.transcript: Transcript | None = None

    def on_next(self, delta: Delta) -> None:
        if self.stopped:
            return
        if self.transcript is None:
            self.transcript = delta.transcript
            self.link.stats.time_to_first_chunk = self.clock() - self.started
        if delta.chunk.is_final:
            stats = self.link.stats
            stats.duration = self.clock() - self.started
            self.emit(delta.transcript.response(stats.dropped == 0, stats))
            self.complete()

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        if isinstance(error, IncompleteStreamError):
            self.fail(error)
            return
        incomplete = IncompleteStreamError(self.partial(), f"{type(error).__name__}: {error}")
        incomplete.__cause__ = error
        self.fail(incomplete)

    def on_completed(self) -> None:
        if self.stopped:
            return
        self.fail(IncompleteStreamError(self.partial(), "the stream ended before its final chunk"))

    def partial(self) -> Response:
        stats = self.link.stats
        stats.duration = self.clock() - self.started
        transcript = Transcript() if self.transcript is None else self.transcript
        return transcript.response(False, stats)


def finalize(clock: Clock = time.perf_counter) -> Operator[Delta, Response]:
    """Emit exactly one ``Response`` when the final chunk's delta arrives, then complete.

    If upstream fails or completes before the final chunk, fail with
    ``IncompleteStreamError`` whose ``partial`` holds every chunk received in order, and
    whose ``__cause__`` is the original error. ``clock`` times the stats.
    """
    return Operator(lambda downstream, link: FinalizeStage(downstream, link, clock))
