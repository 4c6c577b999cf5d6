"""What reorder and the pipeline promise about the final chunk, recovery and the shared context
(issue 23, items 1, 3, 4 and reorder's restart path): each test pins a sentence of reorder's
docstring or of ``Resume``'s, with the five operators piped and fused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import CurrentThreadScheduler

import rxstream
from rxstream import operators as rxo
from rxstream.core._demand import Demand, Resume, current_demand, current_resume, current_secrets, current_stats
from rxstream.core._redaction import Secrets

from .support import FiveOperators, frame, frames_for, run

WINDOW = 8


def invalid_chunk(error: Exception | None) -> rxstream.InvalidChunkError:
    """The InvalidChunkError that ended a stream: the error itself, or the cause of the
    IncompleteStreamError that carries the partial response."""
    found = error if isinstance(error, rxstream.InvalidChunkError) else getattr(error, "__cause__", None)
    assert isinstance(found, rxstream.InvalidChunkError), f"expected an InvalidChunkError, got {error!r}"
    return found


def reassemble(five: Callable[..., FiveOperators], frames: list[bytes]) -> rxstream.Response | Exception:
    outcome = run(rxstream.from_frames(frames).pipe(five(window=WINDOW)))
    return outcome.items[0] if outcome.items else outcome.error  # type: ignore[return-value]


def test_the_final_chunk_in_order_while_later_chunks_are_held_is_an_error(five: Callable[..., FiveOperators]) -> None:
    # Chunk 2 is held waiting for 1; 1 comes and is final, so 2 comes after the final chunk.
    error = reassemble(five, [frame(0, "a"), frame(2, "c"), frame(1, "b", True)])
    assert isinstance(error, rxstream.StreamError), "reorder's Raises: a chunk after the final one"
    cause = invalid_chunk(error)
    assert cause.code == 40002 and cause.received == 2, "chunk 2 is named, at once, not a gap found at the end"


def test_a_final_chunk_held_behind_later_held_chunks_is_an_error(five: Callable[..., FiveOperators]) -> None:
    error = reassemble(five, [frame(0, "a"), frame(3, "d"), frame(2, "c", True), frame(1, "b")])
    assert isinstance(error, rxstream.StreamError)
    assert invalid_chunk(error).received == 3


def test_a_chunk_after_a_held_final_chunk_is_an_error(five: Callable[..., FiveOperators]) -> None:
    error = reassemble(five, [frame(0, "a"), frame(2, "c", True), frame(3, "d"), frame(1, "b")])
    assert isinstance(error, rxstream.StreamError)
    assert invalid_chunk(error).received == 3


def test_the_final_chunk_held_until_the_gap_closes_completes(five: Callable[..., FiveOperators]) -> None:
    response = reassemble(five, [frame(0, "a"), frame(2, "c", True), frame(1, "b")])
    assert isinstance(response, rxstream.Response) and response.text == "abc" and response.complete


class Recording(Observable[bytes]):
    """A source that sends ``frames`` one at a time, until disposed, recording what it sent; like
    a network source, it takes the pipeline's ``Resume`` and ``Secrets`` when subscribed."""

    def __init__(self, frames: list[bytes], token: str = "") -> None:
        super().__init__()
        self.frames = frames
        self.token = token
        self.sent = 0
        self.disposed = False
        self.resume: Resume | None = None
        self.secrets: Secrets | None = None
        self.demand: Demand | None = None
        self.stats: rxstream.Stats | None = None
        self.positions: list[int] = []  # Resume.position() after each frame sent
        self.restarts: list[int] = []

    def _subscribe_core(
        self, observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self.resume = resume = current_resume()
        self.secrets = current_secrets()
        self.demand = current_demand()
        self.stats = current_stats()
        if self.token:
            self.secrets.add(self.token)

        def dispose() -> None:
            self.disposed = True

        def send(*_: Any) -> None:  # later, as a network source does: after subscribe has returned
            for raw in self.frames:
                if self.disposed:
                    return
                self.sent += 1
                observer.on_next(raw)
                if resume.position is not None:
                    self.positions.append(resume.position())
            observer.on_completed()

        return CompositeDisposable(Disposable(dispose), CurrentThreadScheduler.singleton().schedule(send))


def test_the_final_chunk_stops_the_source(five: Callable[..., FiveOperators]) -> None:
    # "Once the final chunk and all before it are delivered, reorder completes without waiting for upstream, and stops it."
    source = Recording([frame(0, "a"), frame(1, "b", True), frame(2, "never read"), frame(3, "nor this")])
    outcome = run(source.pipe(five(window=WINDOW)))
    assert outcome.completed and outcome.items[0].text == "ab"
    assert source.sent == 2


def test_the_source_sees_the_next_index_reorder_needs(five: Callable[..., FiveOperators]) -> None:
    # Resume: "Reorder sets position: the next index it needs, so a reconnecting source can ask the server to resume from there."
    source = Recording(frames_for(["a", "b", "c", "d"], [0, 2, 1, 3]))
    run(source.pipe(five(window=WINDOW)))
    assert source.positions[:3] == [1, 1, 3]


def test_each_pipeline_has_its_own_recovery_hooks_and_secrets(five: Callable[..., FiveOperators]) -> None:
    first = Recording(frames_for(["a", "b", "c"], [0, 1]), token="first-token-123")
    run(first.pipe(five(window=WINDOW)))
    second = Recording([frame(0, "first-token-123 is not a secret here"), b"not a frame"])
    outcome = run(second.pipe(five(window=WINDOW)))
    assert first.resume is not None and second.resume is not None and second.resume is not first.resume
    assert second.positions == [1], "the second pipeline's source sees its own reorder's position"
    assert isinstance(outcome.error, rxstream.StreamError)
    # Outside any pipeline: "a fresh one".
    assert current_resume() is not first.resume and current_resume().position is None
    assert second.secrets is not None and "first-token-123" not in second.secrets.values
    assert second.demand is not None and second.demand is not first.demand, (
        "each pipeline's buffer publishes its own demand"
    )
    assert second.stats is not None and second.stats is not first.stats and second.stats.chunks == 1
    assert current_demand() is None and current_stats() is not first.stats
    assert "first-token-123" not in current_secrets().values


def test_a_token_the_source_sent_is_redacted_from_a_stages_frame_error(five: Callable[..., FiveOperators]) -> None:
    # FrameError: "the message shows none of secrets (the tokens the source sent)".
    source = Recording([frame(0, "a"), b'{"chunk": "sk-secret-token-42"}'], token="sk-secret-token-42")
    outcome = run(source.pipe(five(window=WINDOW)))
    assert isinstance(outcome.error, rxstream.StreamError)
    chain = [outcome.error, outcome.error.__cause__]
    assert any(isinstance(error, rxstream.FrameError) for error in chain)
    assert all("sk-secret-token-42" not in str(error) for error in chain if error is not None)


class Restartable(Observable[bytes]):
    """A source that can request its stream again from an index (``Resume.restart``): it sends
    ``opening``, and after each restart the frames from the requested index in order."""

    def __init__(self, opening: list[bytes], pieces: list[str], allowed: int) -> None:
        super().__init__()
        self.opening, self.pieces, self.allowed = opening, pieces, allowed
        self.restarts: list[int] = []

    def _subscribe_core(
        self, observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        resume = current_resume()
        queue: list[bytes] = list(self.opening)

        def restart(index: int) -> bool:
            if len(self.restarts) >= self.allowed:
                return False
            self.restarts.append(index)
            queue[:] = frames_for(self.pieces)[index:]
            return True

        resume.restart = restart
        while queue:
            observer.on_next(queue.pop(0))
        observer.on_completed()
        return Disposable()


def test_a_gap_beyond_the_window_requests_the_stream_again_from_the_gap(five: Callable[..., FiveOperators]) -> None:
    # reorder's Raises: "a chunk beyond the window (unless the source can request the stream again from the gap)".
    pieces = [f"<{i}>" for i in range(3 * WINDOW)]
    sent = frames_for(pieces)
    source = Restartable([sent[0], sent[1], sent[WINDOW + 3], sent[2 * WINDOW]], pieces, allowed=1)
    outcome = run(source.pipe(five(window=WINDOW)))
    assert source.restarts == [2]
    assert outcome.completed and outcome.items[0].text == "".join(pieces)


def test_a_gap_beyond_the_window_fails_once_the_source_cannot_request_again(five: Callable[..., FiveOperators]) -> None:
    pieces = [f"<{i}>" for i in range(3 * WINDOW)]
    sent = frames_for(pieces)
    source = Restartable([sent[0], sent[2 * WINDOW]], pieces, allowed=0)
    outcome = run(source.pipe(five(window=WINDOW)))
    assert invalid_chunk(outcome.error).received == 2 * WINDOW


def iterate(frames: list[bytes], read: list[int]) -> Iterator[bytes]:
    for raw in frames:
        read.append(1)
        yield raw


def test_from_frames_is_not_read_past_the_final_chunk(five: Callable[..., FiveOperators]) -> None:
    read: list[int] = []
    frames = [frame(0, "a"), frame(1, "b", True), *(frame(i, "x") for i in range(2, 50))]
    outcome = run(rxstream.from_frames(iterate(frames, read)).pipe(five(window=WINDOW)))
    assert outcome.completed and outcome.items[0].text == "ab"
    assert len(read) == 2


def test_the_default_window_is_64() -> None:
    # README: rxo.reorder(window=64); reorder: "a chunk window or more beyond the next expected index cannot be held".
    held = run(rxstream.from_frames([frame(63, "x")]).pipe(rxo.parse(), rxo.reorder()))
    assert invalid_chunk(held.error).received is None, "63 ahead is held: the stream fails only at its end, on the gap"
    refused = run(rxstream.from_frames([frame(64, "x")]).pipe(rxo.parse(), rxo.reorder()))
    assert invalid_chunk(refused.error).received == 64
