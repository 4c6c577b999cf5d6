"""Reorder and reassembly, proven with hypothesis properties."""

from __future__ import annotations

from collections.abc import Callable

import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from reactivex.subject import Subject

import rxstream
from rxstream import operators as rxo
from rxstream.testing import within_window as bounded_permutation

from .support import FiveOperators, Outcome, frame, frames_for, run

WINDOW = 8
pieces_st = st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=40)


def reassemble(
    five: Callable[..., FiveOperators], frames: list[bytes], window: int = WINDOW
) -> rxstream.Response | Exception:
    outcome = run(rxstream.from_frames(frames).pipe(five(window=window)))
    return outcome.items[0] if outcome.items else outcome.error  # type: ignore[return-value]


@given(st.data(), pieces_st)
def test_bounded_permutation_reassembles_exactly(
    five: Callable[..., FiveOperators], data: st.DataObject, pieces: list[str]
) -> None:
    order = data.draw(bounded_permutation(len(pieces), WINDOW))
    response = reassemble(five, frames_for(pieces, order))
    assert isinstance(response, rxstream.Response)
    assert response.text == "".join(pieces) and response.complete and response.chunks == len(pieces)
    assert response.stats.reorder_depth < WINDOW


@given(st.data(), pieces_st.filter(lambda p: len(p) >= 2))
def test_missing_index_fails_with_the_contiguous_prefix(
    five: Callable[..., FiveOperators], data: st.DataObject, pieces: list[str]
) -> None:
    missing = data.draw(st.integers(0, len(pieces) - 1))
    order = [i for i in data.draw(bounded_permutation(len(pieces), WINDOW)) if i != missing]
    error = reassemble(five, frames_for(pieces, order))
    # the gap (InvalidChunkError) or, when the missing chunk is the last, the end before it
    assert isinstance(error, (rxstream.InvalidChunkError, rxstream.IncompleteStreamError))
    assert error.partial is not None
    assert error.partial.text == "".join(pieces[:missing]) and not error.partial.complete
    assert error.partial.chunks == missing


@given(st.data(), pieces_st)
def test_duplicates_anywhere_never_change_the_text(
    five: Callable[..., FiveOperators], data: st.DataObject, pieces: list[str]
) -> None:
    order = data.draw(bounded_permutation(len(pieces), WINDOW))
    sent = list(order)
    for _ in range(data.draw(st.integers(0, 10))):
        # a resend of an index already sent, placed anywhere after its first copy
        i = data.draw(st.integers(0, len(sent) - 1))
        sent.insert(data.draw(st.integers(i + 1, len(sent))), sent[i])
    last_needed = max(sent.index(i) for i in range(len(pieces)))
    response = reassemble(five, frames_for(pieces, sent))
    assert isinstance(response, rxstream.Response) and response.text == "".join(pieces)
    assert response.stats.duplicates == sum(1 for i in sent[: last_needed + 1]) - len(pieces)


def test_duplicate_with_different_content_is_invalid_chunk(five: Callable[..., FiveOperators]) -> None:
    error = reassemble(five, [frame(0, "a"), frame(1, "b"), frame(1, "B"), frame(2, "c", True)])
    assert isinstance(error, rxstream.InvalidChunkError) and error.partial is not None
    assert error.partial.text == "ab" and error.code == 40002 and error.received == 1


def test_held_duplicate_with_different_content_is_invalid_chunk(five: Callable[..., FiveOperators]) -> None:
    error = reassemble(five, [frame(1, "b"), frame(1, "x"), frame(0, "a")])
    assert isinstance(error, rxstream.InvalidChunkError)


def test_a_resend_with_another_timestamp_is_a_duplicate(five: Callable[..., FiveOperators]) -> None:
    resend = b'{"chunk": {"index": 0, "data": "a", "is_final": false}, "timestamp": 99}'
    response = reassemble(five, [frame(0, "a"), resend, frame(1, "b", True)])
    assert isinstance(response, rxstream.Response) and response.text == "ab" and response.stats.duplicates == 1


def test_a_resend_is_compared_while_at_most_a_window_behind(five: Callable[..., FiveOperators]) -> None:
    pieces = [f"<{i}>" for i in range(5 * WINDOW)]
    *sent, last = frames_for(pieces)
    behind = len(sent) - WINDOW  # the oldest index a resend of which is still compared with the original
    response = reassemble(five, [*sent, frame(behind - 1, "changed"), last])
    assert isinstance(response, rxstream.Response) and response.text == "".join(pieces)
    assert response.stats.duplicates == 1  # too far behind to tell: taken for a duplicate
    error = reassemble(five, [*sent, frame(behind, "changed"), last])
    assert isinstance(error, rxstream.InvalidChunkError) and error.partial is not None
    assert error.partial.text == "".join(pieces[:-1]) and error.received == behind


def test_index_beyond_the_window_is_invalid_chunk(five: Callable[..., FiveOperators]) -> None:
    error = reassemble(five, [frame(0, "a"), frame(1 + WINDOW, "far")])
    assert isinstance(error, rxstream.InvalidChunkError) and (error.expected, error.received) == (1, 1 + WINDOW)
    assert "expected index 1" in str(error) and "request it again" in str(error)


def test_huge_index_allocates_nothing(five: Callable[..., FiveOperators]) -> None:
    error = reassemble(five, [frame(0, "a"), frame(10**12, "far")], window=10**13)
    assert isinstance(error, rxstream.InvalidChunkError)  # the upstream ended with the gap
    assert error.partial is not None and error.partial.text == "a"


def test_chunk_after_the_final_index_is_invalid_chunk(five: Callable[..., FiveOperators]) -> None:
    error = reassemble(five, [frame(2, "c", True), frame(3, "d"), frame(0, "a"), frame(1, "b")])
    assert isinstance(error, rxstream.InvalidChunkError)
    error = reassemble(five, [frame(3, "d"), frame(0, "a"), frame(1, "b", True)])
    assert isinstance(error, rxstream.InvalidChunkError) and error.partial is not None and error.partial.text == "a"


def test_completes_on_the_final_chunk_without_waiting_for_upstream() -> None:
    upstream: Subject[bytes] = Subject()
    outcome = run_until_now(upstream.pipe(rxo.parse(), rxo.reorder()), upstream, [frame(1, "b", True), frame(0, "a")])
    assert [c.data for c in outcome.items] == ["a", "b"] and outcome.completed
    assert not upstream.observers  # reorder stopped its upstream when it completed


def run_until_now(
    observable: reactivex.Observable[rxstream.Chunk], upstream: Subject[bytes], frames: list[bytes]
) -> Outcome:
    outcome = Outcome()
    observable.subscribe(
        outcome.items.append, lambda e: setattr(outcome, "error", e), lambda: setattr(outcome, "completed", True)
    )
    for raw in frames:
        upstream.on_next(raw)
    return outcome


class ReorderMachine(RuleBasedStateMachine):
    """Chunks sent one at a time, against a model: a set of received indices and the delivered prefix."""

    @initialize(n=st.integers(1, 30))
    def start(self, n: int) -> None:
        self.n = n
        self.upstream: Subject[bytes] = Subject()
        self.delivered: list[int] = []
        self.errors: list[Exception] = []
        self.completed = False
        self.upstream.pipe(rxo.parse(), rxo.reorder(WINDOW)).subscribe(
            lambda c: self.delivered.append(c.index), self.errors.append, lambda: setattr(self, "completed", True)
        )
        self.received: set[int] = set()

    def next_expected(self) -> int:
        prefix = 0
        while prefix in self.received:
            prefix += 1
        return prefix

    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        if self.errors or self.completed:
            before = list(self.delivered)
            self.upstream.on_next(frame(0, "late"))
            assert self.delivered == before and len(self.errors) <= 1  # nothing after the end
            return
        expected = self.next_expected()
        index = data.draw(st.integers(0, min(self.n - 1, expected + WINDOW + 1)))
        self.upstream.on_next(frame(index, f"<{index}>", index == self.n - 1))
        if index - expected >= WINDOW and index not in self.received:
            assert self.errors and isinstance(self.errors[0], rxstream.InvalidChunkError)
            return
        self.received.add(index)

    @invariant()
    def delivered_is_the_contiguous_prefix_once(self) -> None:
        if not getattr(self, "n", None):
            return
        if not self.errors:
            assert self.delivered == list(range(self.next_expected()))
        assert self.completed == (not self.errors and self.n - 1 in self.received and self.next_expected() == self.n)


TestReorderMachine = ReorderMachine.TestCase
TestReorderMachine.settings = settings(max_examples=60, stateful_step_count=40)
