"""Who a reference server lets in: the bearer token, and the 429s (the first k, and beyond a QPS limit)."""

from __future__ import annotations

import hmac
import time
from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class ServerStats:
    """What a reference server saw, for tests and the demo."""

    handshakes: int = 0
    rejected: int = 0  # answered 429
    connections: int = 0
    frames_sent: int = 0
    resumed_from: int = 0  # the last resume_from (or Last-Event-ID + 1) a request asked for


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
