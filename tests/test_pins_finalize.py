"""finalize, pinned where the in-memory suite left it loose (issue 23): its times (Stats: "seconds
from the moment the pipeline was subscribed", on the timer given) and its error paths ("no error
path may itself fail": a partial that cannot be built leaves an empty one and a note saying why)."""

from __future__ import annotations

import reactivex

import rxstream
from rxstream import Chunk
from rxstream import operators as rxo
from rxstream.operators._accumulate import Delta
from rxstream.operators._finalize import Timer

from .support import run


def readings(*seconds: float) -> Timer:
    """A timer giving ``seconds`` in turn: at subscription, on the first delta, at the end."""
    given = iter(seconds)
    return lambda: next(given)


def test_the_times_are_seconds_from_subscription() -> None:
    chunks = [Chunk(0, "a"), Chunk(1, "b", is_final=True)]
    response = run(reactivex.from_iterable(chunks).pipe(rxo.accumulate(), rxo.finalize(readings(100, 101, 103))))
    stats = response.items[0].stats
    assert (stats.time_to_first_chunk, stats.duration) == (1, 3)


def test_a_partials_duration_is_seconds_from_subscription() -> None:
    chunks = [Chunk(0, "a")]
    error = run(reactivex.from_iterable(chunks).pipe(rxo.accumulate(), rxo.finalize(readings(100, 101, 104)))).error
    assert isinstance(error, rxstream.IncompleteStreamError) and error.partial is not None
    assert (error.partial.stats.time_to_first_chunk, error.partial.stats.duration) == (1, 4)


class Unbuildable(rxstream.Transcript):
    """A transcript whose Response cannot be built (as a bug in a user's stage could make one)."""

    def response(self, complete: bool, stats: rxstream.Stats) -> rxstream.Response:
        raise RuntimeError("cannot build the response")


def test_an_end_whose_partial_cannot_be_built_keeps_an_empty_one_and_says_why() -> None:
    lost = rxstream.ConnectionLostError("wss://example.test/stream", "reset", 4)
    for end in (reactivex.empty(), reactivex.throw(lost)):
        source = reactivex.concat(reactivex.of(Delta("a", Chunk(0, "a"), Unbuildable())), end)
        error = run(source.pipe(rxo.finalize())).error
        assert isinstance(error, rxstream.StreamError) and error.partial is not None
        assert (error.partial.text, error.partial.chunks, error.partial.complete) == ("", 0, False)
        notes = "\n".join(getattr(error, "__notes__", []))
        assert "could not be kept (RuntimeError: cannot build the response)" in notes


def test_an_error_that_already_holds_its_partial_keeps_it() -> None:
    # with_partial: "A StreamError is itself that error"; one an earlier finalize gave its partial keeps that one.
    first = run(reactivex.of(Chunk(0, "kept")).pipe(rxo.accumulate(), rxo.finalize())).error
    assert isinstance(first, rxstream.IncompleteStreamError) and first.partial is not None
    again = run(reactivex.throw(first).pipe(rxo.accumulate(), rxo.finalize())).error
    assert again is first and first.partial.text == "kept"
