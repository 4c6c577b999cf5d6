"""Helpers shared by the tests: building protocol frames and running observables to the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from reactivex import Observable

import rxstream
from rxstream import operators as rxo
from rxstream.operators._backpressure_buffer import Overflow
from rxstream.operators._finalize import Timer
from rxstream.protocol._sse import SSEEvent, sse_events

FiveOperators = Callable[[Observable[Any]], Observable[rxstream.Response]]


def frame(index: int, data: str = "", is_final: bool = False, **extra: Any) -> bytes:
    """One protocol frame; ``extra`` fields go into the chunk."""
    return orjson.dumps(
        {"chunk": {"index": index, "data": data, "is_final": is_final, **extra}, "timestamp": 1672531200}
    )


def frames_for(pieces: Sequence[str], order: Iterable[int] | None = None) -> list[bytes]:
    """Frames carrying ``pieces`` as chunks 0..n-1 (the last final), sent in ``order``."""
    last = len(pieces) - 1
    return [frame(i, pieces[i], i == last) for i in (range(len(pieces)) if order is None else order)]


def decode(raw: bytes, cuts: Iterable[int] = ()) -> list[SSEEvent]:
    """The events of an SSE body read in pieces cut at ``cuts``, to its end."""
    bounds = [0, *sorted(cuts), len(raw)]
    return list(sse_events(raw[start:end] for start, end in zip(bounds, bounds[1:], strict=False)))


@dataclass
class Outcome:
    """Everything an observable emitted, and how it ended."""

    items: list[Any] = field(default_factory=list)
    error: Exception | None = None
    completed: bool = False


def run(observable: Observable[Any]) -> Outcome:
    """Subscribe and collect; for synchronous sources this returns after the terminal event."""
    outcome = Outcome()

    def on_error(error: Exception) -> None:
        outcome.error = error

    def on_completed() -> None:
        outcome.completed = True

    observable.subscribe(outcome.items.append, on_error, on_completed)
    assert outcome.completed or outcome.error is not None, "a synchronous run must end"
    return outcome


def piped(
    window: int = 64, max_pending: int = 5, overflow: Overflow = "block", timer: Timer = time.perf_counter
) -> FiveOperators:
    """The five operators piped one by one, as ``rxstream.pipeline`` would fuse them with the same arguments."""

    def apply(source: Observable[Any]) -> Observable[rxstream.Response]:
        return source.pipe(
            rxo.parse(),
            rxo.reorder(window),
            rxo.backpressure_buffer(max_pending, overflow),
            rxo.accumulate(),
            rxo.finalize(timer),
        )

    return apply


def fused(
    window: int = 64, max_pending: int = 5, overflow: Overflow = "block", timer: Timer = time.perf_counter
) -> FiveOperators:
    """``rxstream.pipeline``: the five operators fused, with the fast path in front."""
    return rxstream.pipeline(window, max_pending, overflow, timer)
