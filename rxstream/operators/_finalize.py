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

    .. marble::
        :alt: finalize

        -a--b--f--|
        [ finalize() ]
        -------(R|)

        -a--b--|
        [ finalize() ]
        -------#

    ``a``, ``b`` and ``f`` are deltas, ``f`` the final chunk's; ``R`` is the ``Response``,
    emitted and completed on ``f`` without waiting for upstream. In the second diagram
    upstream ends before its final chunk: ``IncompleteStreamError``, whose ``partial``
    holds ``a`` and ``b``.

    Args:
        timer: Seconds as a float, read at subscription, on the first delta and at the end,
            for ``Stats.time_to_first_chunk`` and ``Stats.duration``.

    Returns:
        An operator that takes an observable of ``Delta``s and returns an observable of one
        ``Response``. ``Response.complete`` is false when an earlier stage dropped items.

    Raises:
        IncompleteStreamError: (to the observer) upstream completed or failed before the
            final chunk; ``partial`` holds every chunk received in order, and
            ``__cause__`` is upstream's error, if any (an ``IncompleteStreamError`` from
            upstream is passed on as it is).
    """
    return Operator(lambda downstream, shared: FinalizeStage(downstream, shared, timer))
