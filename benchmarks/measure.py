"""Timing helpers: medians of repetitions, interleaved so that drift hits every contender alike."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    """One row of the table: a figure, the target it is held to, and the rates behind it."""

    name: str
    ratio: float
    target: float
    higher_is_better: bool = True
    detail: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target


def progress(message: str) -> None:
    print(f"  … {message}", file=sys.stderr, flush=True)


def medians(contenders: dict[str, Callable[[], object]], repetitions: int) -> dict[str, float]:
    """The median seconds of each contender, run in turn ``repetitions`` times."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repetitions):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


async def async_medians(contenders: dict[str, Callable[[], Awaitable[object]]], repetitions: int) -> dict[str, float]:
    """``medians`` for contenders that are awaited: each timed from its call to the end of its await."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repetitions):
        for name, run in contenders.items():
            started = time.perf_counter()
            await run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}
