"""finalize: one ``Response`` on the final chunk, or the error that cut it short with the partial one on it."""

from __future__ import annotations

import time
from collections.abc import Callable

from reactivex import abc

from ..core._errors import IncompleteStreamError, StreamError
from ..core._stage import Operator, Shared, Stage
from ..core._transcript import Transcript
from ..core._values import Response, Stats
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
            try:
                response = delta.transcript.response(stats.dropped == 0, stats)
            except Exception as failure:  # raised into the source, it would be lost there: end typed
                self.fail(with_partial(failure, self.partial))
                return
            self.emit(response)
            self.complete()

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        self.fail(with_partial(error, self.partial))

    def on_completed(self) -> None:
        if self.stopped:
            return
        partial, trouble = safely(self.partial)
        incomplete = IncompleteStreamError(partial, "the stream ended before its final chunk")
        if trouble is not None:
            incomplete.add_note(trouble)
        self.fail(incomplete)

    def partial(self) -> Response:
        stats = self.shared.stats
        stats.duration = self.timer() - self.started
        transcript = Transcript() if self.transcript is None else self.transcript
        return transcript.response(False, stats)


def safely(build: Callable[[], Response]) -> tuple[Response, str | None]:
    """The partial response ``build`` makes; if making it fails, an empty one and a note saying why:
    no error path may itself fail."""
    try:
        return build(), None
    except Exception as failure:
        return Transcript().response(False, Stats()), (
            f"the response so far could not be kept ({type(failure).__name__}: {failure}); .partial is empty"
        )


def with_partial(error: Exception, build: Callable[[], Response]) -> StreamError:
    """The error to raise for ``error``, with the response so far (``build``'s) on its ``partial``
    and a note saying what it holds. A ``StreamError`` is itself that error; anything else (a
    user's operator failing) becomes the ``__cause__`` of an ``IncompleteStreamError``."""
    if isinstance(error, StreamError) and error.partial is not None:
        return error  # an earlier finalize has kept it already
    partial, trouble = safely(build)
    typed: StreamError
    if isinstance(error, StreamError):
        typed = error
        typed.partial = partial
        typed.add_note(
            f"the response so far ({partial.chunks} chunks, {len(partial.text)} characters) is kept on this error's .partial"
        )
    else:
        typed = IncompleteStreamError(partial, f"{type(error).__name__}: {error}")
        typed.__cause__ = error
    if trouble is not None:
        typed.add_note(trouble)
    return typed


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
    holds ``a`` and ``b``. Had upstream failed instead, its error would end the stream, with
    ``partial`` set the same way.

    Args:
        timer: Seconds as a float, read at subscription, on the first delta and at the end,
            for ``Stats.time_to_first_chunk`` and ``Stats.duration``.

    Returns:
        An operator that takes an observable of ``Delta``s and returns an observable of one
        ``Response``. ``Response.complete`` is false when an earlier stage dropped items.

    Raises:
        StreamError: (to the observer) upstream failed before the final chunk with this
            error (``AuthenticationError``, ``StreamTimeoutError``, ``FrameError``, …), now with
            ``partial`` holding every chunk received in order (possibly none) and a note
            saying so. An error that is no ``StreamError`` becomes the ``__cause__`` of an
            ``IncompleteStreamError`` holding the partial.
        IncompleteStreamError: (to the observer) upstream completed before the final chunk;
            ``partial`` holds every chunk received in order.
    """
    return Operator(lambda downstream, shared: FinalizeStage(downstream, shared, timer))
