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
    print(f"    … {message}"[:100], file=sys.stderr, flush=True)


class Stages:
    """The full run's progress on stderr: which group of rows, how far (by each group's usual share of
    the time on a quiet machine) and an ETA from the pace so far; one line of at most 100 columns each."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights
        self.total = sum(weights.values())
        self.done = 0.0
        self.started = time.perf_counter()

    def begin(self, name: str) -> None:
        elapsed = time.perf_counter() - self.started
        number = list(self.weights).index(name) + 1
        share = self.done / self.total
        eta = f"ETA {_minutes(elapsed / share * (1 - share))}" if share else "ETA after the first group"
        line = f"[{number:>2}/{len(self.weights)}] {name}: {share:4.0%} done, {_minutes(elapsed)} elapsed, {eta}"
        print(line[:100], file=sys.stderr, flush=True)

    def end(self, name: str) -> None:
        self.done += self.weights[name]


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


@dataclass
class Timing:
    """A contender's medians over interleaved repetitions: wall and CPU seconds, and the wall range."""

    wall: float
    cpu: float
    wall_low: float
    wall_high: float
    cpu_low: float
    cpu_high: float


async def async_timings(contenders: dict[str, Callable[[], Awaitable[object]]], repetitions: int) -> dict[str, Timing]:
    """``async_medians`` with this process's CPU time too (a server in another process counts for no one)."""
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repetitions):
        for name, run in contenders.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            await run()
            walls[name].append(time.perf_counter() - started)
            cpus[name].append(time.process_time() - cpu_started)
    return {
        name: Timing(
            statistics.median(walls[name]),
            statistics.median(cpus[name]),
            min(walls[name]),
            max(walls[name]),
            min(cpus[name]),
            max(cpus[name]),
        )
        for name in contenders
    }


def medians(
    contenders: dict[str, Callable[[], object]], repetitions: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """The median seconds of each contender on ``clock`` (wall time, or ``time.process_time``), run in turn
    ``repetitions`` times."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repetitions):
        for name, run in contenders.items():
            started = clock()
            run()
            times[name].append(clock() - started)
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
