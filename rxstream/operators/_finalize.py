"""finalize: one ``Response`` on the final chunk, or the partial one with the error that cut it short."""

from __future__ import annotations

import time
from collections.abc import Callable

from reactivex import abc

from ..core._errors import IncompleteStreamError
from ..core._stage import Operator, Shared, Stage
from ..core._transcript import Transcript
from ..core._values import Response
from ._accumulate import Delta

Timer = Callable[[], float]


class FinalizeStage(Stage[Delta, Response]):
    def __init__(self, downstream: abc.ObserverBase[Response], shared: Shared, timer: Timer) -> None:
        super().__init__(downstream, shared)
        self.timer = timer
        self.started = timer()
        self.transcript: Transcript | None = None

    def on_next(self, delta: Delta) -> None:
        if self.stopped:
            return
        if self.transcript is None:
            self.transcript = delta.transcript
            self.shared.stats.time_to_first_chunk = self.timer() - self.started
        if delta.chunk.is_final:
            stats = self.shared.stats
            stats.duration = self.timer() - self.started
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
        stats = self.shared.stats
        stats.duration = self.timer() - self.started
        transcript = Transcript() if self.transcript is None else self.transcript
        return transcript.response(False, stats)


def finalize(timer: Timer = time.perf_counter) -> Operator[Delta, Response]:
    """Emit exactly one ``Response`` when the final chunk's delta arrives, then complete.

    If upstream fails or completes before the final chunk, fail with
    ``IncompleteStreamError`` whose ``partial`` holds every chunk received in order, and
    whose ``__cause__`` is the original error. ``timer`` times the stats.
    """
    return Operator(lambda downstream, shared: FinalizeStage(downstream, shared, timer))
