"""Marble tests in rxstream's vocabulary, on reactivex's TestScheduler: digits are chunks by index.

A diagram is read as rxstream's docstrings draw them (RxJS's rules): each character is one
tick of virtual time; ``-`` is nothing, a digit the chunk of that index (the highest digit of
the source the final chunk), a letter the value ``values`` gives it, ``|`` completion, ``#``
an error, and ``(...)`` what happens at the same tick, the group taking its width in ticks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reactivex import Observable
from reactivex.notification import Notification, OnCompleted, OnError, OnNext
from reactivex.testing import TestScheduler
from reactivex.testing.recorded import Recorded

from ..core._values import Chunk, Response

SUBSCRIBED = 200.0  # the TestScheduler's default: created at 100, subscribed at 200


class MarbleError(Exception):
    """The error a ``#`` stands for when none is given."""


def parse_diagram(diagram: str, values: Mapping[str, Any], error: Exception) -> list[tuple[int, Notification[Any]]]:
    """The (tick, notification) pairs of a diagram."""
    digits = [int(symbol) for symbol in diagram if symbol.isdigit()]
    final = max(digits) if digits else -1
    events: list[tuple[int, Notification[Any]]] = []
    tick, group_at = 0, None
    for symbol in diagram:
        at = tick if group_at is None else group_at
        if symbol == "(":
            group_at = tick
        elif symbol == ")":
            group_at = None
        elif symbol == "|":
            events.append((at, OnCompleted()))
        elif symbol == "#":
            events.append((at, OnError(error)))
        elif symbol.isdigit():
            events.append((at, OnNext(Chunk(int(symbol), symbol, int(symbol) == final))))
        elif symbol in values:
            events.append((at, OnNext(values[symbol])))
        elif symbol not in "- ":
            raise ValueError(f"{symbol!r} in {diagram!r}: give its value in values=")
        tick += symbol != " "
    return events


def symbol_of(value: Any, values: Mapping[str, Any]) -> str:
    """A chunk (or a Delta, by its chunk) as its index; a Response as R; another value by the letter ``values`` gives it."""
    chunk = getattr(value, "chunk", value)
    if isinstance(chunk, Chunk) and 0 <= chunk.index <= 9:
        return str(chunk.index)
    if isinstance(value, Response):
        return "R"
    for symbol, known in values.items():
        if known == value:
            return symbol
    raise ValueError(f"{value!r} has no symbol: give it a letter in values=")


def draw_diagram(recorded: list[Recorded[Any]], values: Mapping[str, Any]) -> str:
    """The diagram of what was recorded, ticks counted from the subscription."""
    diagram = ""
    ticks = sorted({int(record.time - SUBSCRIBED) for record in recorded})
    for tick in ticks:
        if tick < len(diagram):
            raise ValueError(f"signals at tick {tick} fall inside the group before: spread the source diagram out")
        at_once = [record.value for record in recorded if int(record.time - SUBSCRIBED) == tick]
        symbols = "".join(
            symbol_of(n.value, values) if isinstance(n, OnNext) else "#" if isinstance(n, OnError) else "|"
            for n in at_once
        )
        diagram += "-" * (tick - len(diagram)) + (symbols if len(symbols) == 1 else f"({symbols})")
    return diagram


def marbles(
    operator: Callable[[Observable[Any]], Observable[Any]],
    source: str,
    *,
    values: Mapping[str, Any] | None = None,
    error: Exception | None = None,
) -> str:
    """What ``operator`` makes of the cold source ``source``, drawn in the same vocabulary.

    The operator runs on a ``TestScheduler`` (virtual time: timeouts and delays scheduled on it
    take no time), so ``marbles(rxo.reorder(), "-1--0--|")`` is ``"----(01|)"``.

    Args:
        operator: An Rx operator: rxstream's, a user's, or several composed.
        source: The source diagram.
        values: The values of letters, in the source and in the output.
        error: The error ``#`` stands for (a ``MarbleError`` by default).

    Returns:
        The output diagram, from the subscription to the last signal.

    Raises:
        ValueError: a symbol without a value, or output signals too close to draw.
    """
    known = dict(values or {})
    events = parse_diagram(source, known, error or MarbleError("#"))
    scheduler = TestScheduler()
    cold = scheduler.create_cold_observable(*(Recorded(tick, notification) for tick, notification in events))
    horizon = SUBSCRIBED + 10 * (len(source) + 10)
    observer = scheduler.start(lambda: cold.pipe(operator), disposed=horizon)
    return draw_diagram(observer.messages, known)
