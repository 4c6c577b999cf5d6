"""The five operators together, with a user's own operator between them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import orjson
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc, compose
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.internal.exceptions import SequenceContainsNoElementsError
from reactivex.observer import Observer

import rxstream
from rxstream import Demand, Stats
from rxstream import operators as rxo
from rxstream.core._demand import subscribe_upstream
from rxstream.core._transcript import COMPACT_EVERY
from rxstream.operators._fast_path import byte_count
from rxstream.transport._sources import last_of

from .support import FiveOperators, Outcome, assert_same_outcome, frame, frames_for, fused, piped, run


def redact_digits() -> Callable[[Observable[rxstream.Chunk]], Observable[rxstream.Chunk]]:
    """A user's operator in RxPY's own style: Observable(subscribe) around the upstream."""

    def apply(source: Observable[rxstream.Chunk]) -> Observable[rxstream.Chunk]:
        def subscribe(
            observer: abc.ObserverBase[rxstream.Chunk], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return source.subscribe(
                lambda chunk: observer.on_next(chunk._replace(data=re.sub(r"\d", "#", chunk.data))),
                observer.on_error,
                observer.on_completed,
                scheduler=scheduler,
            )

        return Observable(subscribe)

    return apply


class UppercaseStage(rxstream.Stage[rxstream.Chunk, rxstream.Chunk]):
    """A user's operator written as a stage, so it can be fused with the built-in ones."""

    def on_next(self, chunk: rxstream.Chunk) -> None:
        self.emit(chunk._replace(data=chunk.data.upper()))


def test_a_user_operator_between_the_built_in_ones() -> None:
    frames = frames_for(["call ", "555-0100", " now"], order=[1, 0, 2])
    outcome = run(
        rxstream.from_frames(frames).pipe(
            rxo.parse(), rxo.reorder(), redact_digits(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
        )
    )
    assert outcome.items[0].text == "call ###-#### now"


def test_a_user_stage_fuses_with_the_built_in_ones() -> None:
    shout: rxstream.Operator[rxstream.Chunk, rxstream.Chunk] = rxstream.Operator(UppercaseStage)
    frames = frames_for(["quiet ", "words"])
    fused = rxstream.fuse(rxo.parse(), rxo.reorder(), shout, rxo.accumulate(), rxo.finalize())
    assert run(rxstream.from_frames(frames).pipe(fused)).items[0].text == "QUIET WORDS"
    assert (
        run(rxstream.from_frames(frames).pipe(rxo.parse(), shout, rxo.accumulate(), rxo.finalize())).items[0].text
        == "QUIET WORDS"
    )


def test_rx_operators_mix_in() -> None:
    frames = frames_for(["a", "b", "c"])

    def text(delta: rxo.Delta) -> str:
        return delta.text

    outcome = run(
        rxstream.from_frames(frames).pipe(rxo.parse(), rxo.reorder(), rxo.accumulate(), ops.map(text), ops.to_list())
    )
    assert outcome.items == [["a", "b", "c"]]


async def test_await_returns_the_response(five: Callable[..., FiveOperators]) -> None:
    response = await rxstream.from_frames(frames_for(["Hello", ", ", "world"], order=[2, 0, 1])).pipe(five())
    assert isinstance(response, rxstream.Response)
    assert response.text == "Hello, world" and response.complete and response.chunks == 3
    stats = response.stats
    assert (stats.chunks, stats.out_of_order, stats.reorder_depth, stats.duplicates) == (3, 1, 1, 0)
    assert stats.bytes == sum(len(f) for f in frames_for(["Hello", ", ", "world"]))
    assert stats.time_to_first_chunk is not None and stats.duration is not None
    assert 0 <= stats.time_to_first_chunk <= stats.duration


async def test_async_iterable_source(five: Callable[..., FiveOperators]) -> None:
    async def frames() -> AsyncIterator[bytes]:
        for raw in frames_for(["x", "y"]):
            yield raw

    response = await rxstream.from_async_iterable(frames()).pipe(five())
    assert response.text == "xy"


def test_times_come_from_the_injected_clock(five: Callable[..., FiveOperators]) -> None:
    ticks = iter(range(100))
    outcome = run(rxstream.from_frames(frames_for(["a", "b"])).pipe(five(timer=lambda: next(ticks))))
    assert (outcome.items[0].stats.time_to_first_chunk, outcome.items[0].stats.duration) == (1, 2)


def test_multimodal_parts_in_index_order(five: Callable[..., FiveOperators]) -> None:
    frames = [
        frame(2, "", True, image_url="https://img/2.png"),
        frame(0, "Look: "),
        frame(1, "", text="a cat", image_url="https://img/1.png"),
    ]
    response = run(rxstream.from_frames(frames).pipe(five())).items[0]
    assert response.text == "Look: a cat"
    assert response.parts == (
        rxstream.Part("text", "Look: a cat"),
        rxstream.Part("image", "https://img/1.png"),
        rxstream.Part("image", "https://img/2.png"),
    )


def test_upstream_failure_keeps_the_partial_response(five: Callable[..., FiveOperators]) -> None:
    def frames() -> Iterator[bytes]:
        yield frame(0, "kept ")
        yield frame(1, "too")
        raise ConnectionResetError("socket closed")

    error = run(rxstream.from_frames(frames()).pipe(five())).error
    assert isinstance(error, rxstream.IncompleteStreamError)
    assert isinstance(error.__cause__, ConnectionResetError) and error.partial.text == "kept too"
    assert "ConnectionResetError: socket closed" in str(error)


def test_stream_without_final_chunk_is_incomplete(five: Callable[..., FiveOperators]) -> None:
    error = run(rxstream.from_frames([frame(0, "a"), frame(1, "b")]).pipe(five())).error
    assert isinstance(error, rxstream.IncompleteStreamError) and error.__cause__ is None
    assert error.partial.text == "ab" and error.partial.chunks == 2


def test_a_15_mib_response_in_64_byte_chunks(five: Callable[..., FiveOperators]) -> None:
    """Linear-time assembly: quadratic string building would take minutes here."""
    piece = "0123456789abcdef" * 3 + "é" * 16  # 64 characters, multi-byte in UTF-8
    count = 15 * 2**20 // 64
    raw = [frame(i, piece, i == count - 1) for i in range(count)]
    response = run(rxstream.from_frames(raw).pipe(five())).items[0]
    assert len(response.text) == 15 * 2**20 and response.text[:64] == piece and response.text[-64:] == piece
    assert response.chunks == count


def frame_as(kind: str, index: int, data: str, is_final: bool) -> bytes | bytearray | memoryview | str:
    """A frame of the given kind: what the fast path takes, and what it must leave to parse."""
    if kind == "str":  # text frames: bytes counted by encoding
        return frame(index, data, is_final).decode()
    if kind == "bytearray":  # orjson reads it too; the fast path counts it with the bytes
        return bytearray(frame(index, data, is_final))
    if kind == "no timestamp":
        return orjson.dumps({"chunk": {"index": index, "data": data, "is_final": is_final}})
    if kind == "null timestamp":  # as valid, but the fast path leaves it to parse
        return orjson.dumps({"chunk": {"index": index, "data": data, "is_final": is_final}, "timestamp": None})
    if kind == "image":
        return frame(index, data, is_final, image_url=f"https://img/{index}.png")
    if kind == "bad timestamp":
        return orjson.dumps({"chunk": {"index": index, "data": data, "is_final": is_final}, "timestamp": "now"})
    if kind == "bool index":
        return orjson.dumps({"chunk": {"index": bool(index % 2), "data": data, "is_final": is_final}})
    if kind == "negative index":  # plain but for its index: the fast path checks that only where it stops
        return orjson.dumps({"chunk": {"index": -1 - index, "data": data, "is_final": is_final}, "timestamp": 1})
    if kind == "memoryview":
        return memoryview(frame(index, data, is_final))
    if kind == "not json":
        return b"{" + data.encode()
    return frame(index, data, is_final)


SOUND_KINDS = ["bytes"] * 30 + ["str"] * 6 + ["no timestamp", "null timestamp", "image", "bytearray", "memoryview"]
FOREIGN_KINDS = ["bad timestamp", "bool index", "not json", "negative index"]
# ASCII, multi-byte (str frames count their bytes by encoding) and characters the JSON escapes
PIECES = ["", "a", "bc", "é", "部分", "🙂", "x y", '"\\\n', "\x00"]


@st.composite
def streams(draw: st.DrawFn, window: int) -> list[tuple[str, int, str, bool]]:
    """Mostly whole streams, shuffled a little, with the odd duplicate, and in some the odd gap,
    misplaced final, conflicting resend or foreign frame, more or less rare; short ones, and ones
    long enough for the transcript to compact and the fast path to hand over several times.

    What happens to each index comes from a few bytes of one drawn binary (a draw per choice
    would make the long streams slow); they shrink towards a plain chunk, sent once in order.
    """
    count = draw(st.integers(COMPACT_EVERY + 1, 3 * COMPACT_EVERY) if draw(st.booleans()) else st.integers(0, 40))
    faults = draw(st.sampled_from([0, 0, 1, 4, 32]))  # in 256: a fault ends a stream, and long ones should get far
    final = draw(st.sampled_from([count - 1] * 4 + [None, count // 2, count])) if faults else count - 1
    # how far a chunk may come early: within the window, or (a fault) perhaps beyond it
    jitter = draw(st.integers(0, window - 1) | st.integers(0, window + 8) if faults else st.integers(0, window - 1))
    choices = draw(st.binary(min_size=6 * count, max_size=6 * count))
    keys = [index + choices[6 * index] % (jitter + 1) for index in range(count)]
    sent = []
    for index in sorted(range(count), key=lambda index: (keys[index], index)):
        copies, kind, piece, fault, fault_kind = choices[6 * index + 1 : 6 * index + 6]
        data = PIECES[piece % len(PIECES)]
        faulty = fault >= 256 - faults  # (the binary shrinks towards zeros: towards no fault)
        if faulty and fault_kind % 3 == 0:
            continue  # lost
        foreign = faulty and fault_kind % 3 == 1
        sent_as = FOREIGN_KINDS[kind % len(FOREIGN_KINDS)] if foreign else SOUND_KINDS[kind % len(SOUND_KINDS)]
        sent.append((sent_as, index, data, index == final))
        conflicting = faulty and fault_kind % 3 == 2
        if copies % 8 == 7 or conflicting:  # sent twice, the copy differing if conflicting
            sent.append((sent_as, index, data + "?" * conflicting, index == final))
    return sent


def run_paced(
    observable: Callable[[Observable[Any]], Observable[Any]],
    pause_at: int | None,
    frames: Iterable[Any],
    source: Callable[[Iterable[Any]], Observable[Any]] = rxstream.from_frames,
) -> Outcome:
    """Run with a consumer whose demand pauses when frame ``pause_at`` is read and comes back once the
    source stalls (or, for a ``source`` that does not wait for demand, such as reactivex.from_iterable,
    once it has pushed everything)."""
    demand = Demand()
    outcome = Outcome()

    def produce() -> Iterator[Any]:
        for number, raw in enumerate(frames):
            if number == pause_at:
                demand.pause()
            yield raw

    def on_error(error: Exception) -> None:
        outcome.error = error

    def on_completed() -> None:
        outcome.completed = True

    observer = Observer(outcome.items.append, on_error, on_completed)
    subscribe_upstream(observable(source(produce())), observer, None, stats=Stats(), demand=demand)
    demand.resume()  # the consumer catches up: the buffer drains and the source goes on
    assert outcome.completed or outcome.error is not None
    return outcome


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(1, 12) | st.integers(13, 64), st.integers(1, 3), st.none() | st.integers(0, 800))
def test_fused_pipeline_equals_the_operators_piped_one_by_one(
    data: st.DataObject, window: int, max_pending: int, pause_at: int | None
) -> None:
    """The fast path changes nothing: same response, same stats, same error, whatever arrives
    (out of order, duplicated, not a plain chunk, not a chunk at all) and however fast the consumer takes it."""
    sent = data.draw(streams(window))
    frames = [frame_as(kind, index, piece, final) for kind, index, piece, final in sent]
    chains = [chain(window=window, max_pending=max_pending, timer=lambda: 0.0) for chain in (fused, piped)]
    if data.draw(st.booleans()):  # frames pushed one at a time (an Rx operator in between), not handed over in batches
        chains = [compose(ops.map(lambda raw: raw), chain) for chain in chains]
    assert_same_outcome(*(run_paced(chain, pause_at, frames) for chain in chains))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["bytes", "str", "bytearray", "memoryview"]), st.lists(st.sampled_from(PIECES), max_size=3)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_fast_path_counts_the_frames_it_took_as_parse_counts_each(kinds: list[tuple[str, list[str]]]) -> None:
    """FastPath counts the bytes of the frames it took in one go at its hand-over (all str, all
    bytes-like, or a mix): the same figure parse reaches frame by frame."""
    frames: list[Any] = [frame_as(kind, index, "".join(pieces), False) for index, (kind, pieces) in enumerate(kinds)]
    stats = Stats()
    subscribe_upstream(rxstream.from_frames(frames).pipe(rxo.parse()), Observer(), None, stats=stats, demand=None)
    assert byte_count(frames) == stats.bytes
    assert stats.chunks == len(frames)


def test_a_source_stops_reading_its_iterable_once_disposed(five: Callable[..., FiveOperators]) -> None:
    """The fast path loops over a source's frames itself; a subscription disposed while it
    does (here by ``take_until``, signalled from the iterable) still stops the reading there."""
    cancel: reactivex.Subject[None] = reactivex.Subject()
    pulled: list[int] = []

    def produce() -> Iterator[bytes]:
        for index in range(1000):
            pulled.append(index)
            if index == 10:
                cancel.on_next(None)
            yield frame(index, "x", index == 999)

    outcome = run(rxstream.from_frames(produce()).pipe(five(), ops.take_until(cancel)))
    assert outcome.completed and outcome.items == []
    assert pulled == list(range(11))  # the frame yielded after the signal is the last one read


async def test_last_of_gives_what_await_gives() -> None:
    assert await last_of(reactivex.of(1, 2, 3)) == await reactivex.of(1, 2, 3) == 3
    with pytest.raises(SequenceContainsNoElementsError):
        await last_of(reactivex.empty())
    with pytest.raises(rxstream.InvalidChunkError):
        await last_of(reactivex.throw(rxstream.InvalidChunkError(2, 5, "a gap")))


async def test_last_of_disposes_its_subscription_when_cancelled() -> None:
    disposed: list[bool] = []
    never: Observable[Any] = reactivex.create(lambda observer, scheduler: Disposable(lambda: disposed.append(True)))
    waiting = asyncio.ensure_future(last_of(never))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert disposed == [True]
