"""Each operator emits on_next* (on_error | on_completed) and disposes its upstream, on virtual time."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler

import rxstream
from rxstream import operators as rxo

from .support import frame

on_next, on_completed, on_error, subscribe = (
    ReactiveTest.on_next,
    ReactiveTest.on_completed,
    ReactiveTest.on_error,
    ReactiveTest.subscribe,
)


def chunk(index: int, data: str, final: bool = False) -> rxstream.Chunk:
    return rxstream.Chunk(index, data, final, 1672531200)


def assert_grammar(messages: list[Any]) -> None:
    """on_next* followed by exactly one terminal notification, and nothing after it."""
    kinds = [type(m.value) for m in messages]
    assert kinds, "the sequence must end"
    assert all(kind is OnNext for kind in kinds[:-1]) and kinds[-1] in (OnError, OnCompleted)


def start(operator: Any, *upstream: Any) -> tuple[list[Any], list[Any]]:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(*upstream)
    observer = scheduler.start(lambda: source.pipe(operator))
    assert_grammar(observer.messages)
    return observer.messages, source.subscriptions


def values(messages: list[Any]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def test_parse_grammar_and_disposal() -> None:
    messages, subscriptions = start(
        rxo.parse(), on_next(210, frame(0, "a")), on_next(220, b"{oops"), on_next(230, frame(1, "b"))
    )
    assert messages[0] == on_next(210, chunk(0, "a"))
    assert messages[1].time == 220 and isinstance(messages[1].value.exception, rxstream.FrameError)
    assert subscriptions == [subscribe(200, 220)]


def test_parse_completes_with_upstream() -> None:
    messages, subscriptions = start(rxo.parse(), on_next(210, frame(0, "a")), on_completed(250))
    assert messages == [on_next(210, chunk(0, "a")), on_completed(250)] and subscriptions == [subscribe(200, 250)]


def test_reorder_grammar_completes_on_final_and_disposes() -> None:
    messages, subscriptions = start(
        rxo.reorder(4),
        on_next(210, chunk(1, "b")),
        on_next(220, chunk(0, "a")),
        on_next(230, chunk(2, "c", True)),
        on_next(240, chunk(2, "c", True)),
        on_completed(300),
    )
    assert messages == [
        on_next(220, chunk(0, "a")),
        on_next(220, chunk(1, "b")),
        on_next(230, chunk(2, "c", True)),
        on_completed(230),
    ]
    assert subscriptions == [subscribe(200, 230)]


def test_reorder_gap_at_completion_is_an_error() -> None:
    messages, subscriptions = start(
        rxo.reorder(4), on_next(210, chunk(0, "a")), on_next(220, chunk(2, "c")), on_completed(250)
    )
    assert messages[0] == on_next(210, chunk(0, "a"))
    assert messages[1].time == 250 and isinstance(messages[1].value.exception, rxstream.InvalidChunkError)
    assert subscriptions == [subscribe(200, 250)]


@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest", "error"])
def test_backpressure_buffer_passes_through_for_an_eager_consumer(overflow: Any) -> None:
    messages, subscriptions = start(
        rxo.backpressure_buffer(2, overflow),
        *(on_next(210 + i, chunk(i, str(i))) for i in range(5)),
        on_error(260, ValueError("boom")),
    )
    assert values(messages) == [chunk(i, str(i)) for i in range(5)]
    assert messages[-1].time == 260 and isinstance(messages[-1].value.exception, ValueError)
    assert subscriptions == [subscribe(200, 260)]


def test_accumulate_emits_deltas_with_the_text_so_far() -> None:
    messages, _ = start(
        rxo.accumulate(),
        on_next(210, chunk(0, "Hel")),
        on_next(220, rxstream.Chunk(1, "lo", False, None, " there", "https://img/1.png")),
        on_completed(230),
    )
    deltas = values(messages)
    assert [d.text for d in deltas] == ["Hel", "lo there"]
    assert deltas[-1].transcript.text == "Hello there"
    assert deltas[-1].transcript.parts == (
        rxstream.Part("text", "Hello there"),
        rxstream.Part("image", "https://img/1.png"),
    )
    assert messages[-1] == on_completed(230)


def test_finalize_emits_one_response_and_disposes() -> None:
    messages, subscriptions = start(
        reactivex.compose(rxo.accumulate(), rxo.finalize()),
        on_next(210, chunk(0, "a")),
        on_next(220, chunk(1, "b", True)),
        on_next(230, chunk(2, "late")),
    )
    assert len(messages) == 2 and messages[0].time == 220 and messages[1] == on_completed(220)
    response = messages[0].value.value
    assert isinstance(response, rxstream.Response) and response.text == "ab" and response.complete
    assert subscriptions == [subscribe(200, 220)]


def test_finalize_turns_an_error_into_the_partial_response() -> None:
    boom = ConnectionResetError("peer went away")
    messages, subscriptions = start(
        reactivex.compose(rxo.accumulate(), rxo.finalize()), on_next(210, chunk(0, "a")), on_error(220, boom)
    )
    (message,) = messages
    error = message.value.exception
    assert isinstance(error, rxstream.IncompleteStreamError) and error.__cause__ is boom
    assert error.partial.text == "a" and not error.partial.complete and error.partial.chunks == 1
    assert subscriptions == [subscribe(200, 220)]


def test_pipeline_on_virtual_time() -> None:
    messages, subscriptions = start(
        rxstream.pipeline(window=4),
        on_next(210, frame(1, " world", True)),
        on_next(220, frame(0, "hello")),
        on_next(230, frame(0, "hello")),
    )
    assert messages[0].time == 220 and messages[0].value.value.text == "hello world"
    assert messages[1] == on_completed(220) and subscriptions == [subscribe(200, 220)]


def test_disposing_the_subscription_disposes_upstream() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, frame(0, "a")), on_next(900, frame(1, "b", True)))
    observer = scheduler.start(lambda: source.pipe(rxstream.pipeline()), disposed=500)
    assert observer.messages == [] and source.subscriptions == [subscribe(200, 500)]


def test_operators_are_plain_rx_operators() -> None:
    """Each returns Observable -> Observable and composes with reactivex.operators."""
    for operator in (rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()):
        assert isinstance(operator(Observable()), Observable)
