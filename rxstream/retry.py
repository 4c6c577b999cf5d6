"""When to try again: the backoff schedule, and the clock that waits it out (injectable for tests)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``initial`` seconds, times ``factor`` each retry, at most ``cap``, ``max_retries`` times."""

    max_retries: int = 3
    initial: float = 1.0
    factor: float = 2.0
    cap: float = 10.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.initial < 0 or self.factor < 1 or self.cap < 0:
            raise ValueError("RetryPolicy needs max_retries >= 0, initial >= 0, factor >= 1 and cap >= 0")

    def delay(self, retries: int) -> float:
        """The wait before the retry that follows ``retries`` earlier ones: 1, 2, 4 for the defaults."""
        try:
            return min(self.initial * self.factor**retries, self.cap)
        except OverflowError:  # a policy of a thousand retries has long reached its cap
            return self.cap


class Clock(Protocol):
    """Time as the network code sees it: backoff sleeps and rate limits go through here."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """A clock whose sleeps return at once, advancing its time and recording each wait.

    For tests, and for users checking a retry schedule without waiting for it.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


SYSTEM_CLOCK = SystemClock()
