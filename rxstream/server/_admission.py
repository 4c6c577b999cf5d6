"""What both reference servers share: who they let in (the bearer token, the 429s), what they
count, and their lifecycle as async context managers."""

from __future__ import annotations

import hmac
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from ._faults import Faults


@dataclass(slots=True)
class ServerStats:
    """What a reference server saw, for tests and the demo."""

    handshakes: int = 0
    rejected: int = 0  # answered 429
    connections: int = 0
    frames_sent: int = 0
    resumed_from: int = 0  # the last resume_from (or Last-Event-ID + 1, or starting_after + 1) a request asked for
    created: int = 0  # responses created: the Responses endpoint's POSTs streamed (each one paid, on a real API)


class Admission:
    """The checks both reference servers make before streaming, and the counts they keep."""

    def __init__(self, token: str | None, qps: float, reject_first: int, stats: ServerStats) -> None:
        self.token = token
        self.qps = qps
        self.reject_first = reject_first
        self.stats = stats
        self.recent: deque[float] = deque()

    def authorized(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        return hmac.compare_digest(authorization or "", f"Bearer {self.token}")  # in constant time

    def rate_limited(self) -> bool:
        """Count a request; whether to answer it 429 (one of the first ``reject_first``, or past ``qps`` per second)."""
        self.stats.handshakes += 1
        now = time.monotonic()
        while self.recent and now - self.recent[0] > 1.0:
            self.recent.popleft()
        self.recent.append(now)
        limited = self.stats.handshakes <= self.reject_first or len(self.recent) > self.qps
        self.stats.rejected += limited
        return limited


class ReferenceEndpoint:
    """The part of a reference server that does not depend on its protocol. Subclasses
    implement ``start`` (setting ``port`` once bound) and ``close``."""

    def __init__(self, *, token: str | None, faults: Faults, qps: float, host: str, port: int) -> None:
        self.faults = faults
        self.host = host
        self.port = port
        self.stats = ServerStats()
        self.admission = Admission(token, qps, faults.reject_first, self.stats)

    async def start(self) -> Self:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.close()
