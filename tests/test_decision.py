"""The recovery decision both network sources follow, row by row (rxstream/protocol/_decision.py)."""

from __future__ import annotations

import pytest

import rxstream
from rxstream.protocol._decision import DONE, Ending, Fail, Retry, decide

POLICY = rxstream.RetryPolicy()  # 1, 2, 4 s; cap 10 s; 3 retries
E = "ws://host/stream"

ROWS: list[tuple[Ending, int, type[object], str | float]] = [
    # (how the try ended, failures before it, what follows, the retry's delay or the error's words)
    (Ending(finished=True), 0, type(DONE), ""),
    (Ending(finished=True, status=500), 3, type(DONE), ""),
    (Ending(status=401), 0, rxstream.AuthenticationError, "HTTP 401"),
    (Ending(status=403), 0, rxstream.AuthenticationError, "HTTP 403"),
    (Ending(status=404), 0, rxstream.TransportError, "answered HTTP 404"),
    (Ending(status=400), 0, rxstream.TransportError, "answered HTTP 400"),
    (Ending(status=302), 0, rxstream.TransportError, "answered HTTP 302"),
    (Ending(status=408), 0, Retry, 1.0),
    (Ending(status=429), 1, Retry, 2.0),
    (Ending(status=429, retry_after=3.0), 0, Retry, 3.0),  # at least what the server asks
    (Ending(status=429, retry_after=0.5), 2, Retry, 4.0),  # and exponential still
    (Ending(status=429, retry_after=86400.0), 0, Retry, 10.0),  # never past the cap
    (Ending(status=429), 3, rxstream.RateLimitedError, "429 Too Many Requests 4 times"),
    (Ending(status=503), 2, Retry, 4.0),
    (Ending(status=503), 3, rxstream.ConnectionLostError, "HTTP 503"),
    (Ending(close_code=1008, reason="bad token"), 0, rxstream.AuthenticationError, "close code 1008: bad token"),
    (Ending(too_large=1024), 0, rxstream.FrameTooLargeError, "max_size=1024"),
    (Ending(gap=True), 0, Retry, 1.0),
    (Ending(stalled=0.5), 2, Retry, 4.0),
    (Ending(stalled=0.5), 3, rxstream.StreamTimeoutError, "no frame for 0.5 s"),
    (Ending(network="cannot connect: refused"), 2, Retry, 4.0),
    (Ending(network="cannot connect: refused"), 3, rxstream.ConnectionLostError, "after 4 attempts"),
    (Ending(close_code=1000, cut_short=True), 0, Retry, 1.0),
    *[(Ending(close_code=code), 0, Retry, 1.0) for code in (1001, 1005, 1006, 1011, 1012, 1013, 1015)],
    *[
        (Ending(close_code=code), 0, rxstream.ConnectionLostError, "not retried")
        for code in (1002, 1003, 1007, 1010, 1014, 4000)
    ],
    (Ending(close_code=1006, progressed=True), 3, Retry, 1.0),  # progress forgives the failures before
    (Ending(), 0, Retry, 1.0),  # an HTTP body that ended before the final chunk
    (Ending(resumable=False), 0, rxstream.ConnectionLostError, "no id to resume from"),
    (Ending(network="reset", resumable=False), 0, rxstream.ConnectionLostError, "replay='deterministic'"),
]


@pytest.mark.parametrize("ending, failures, follows, detail", ROWS)
def test_decide(ending: Ending, failures: int, follows: type[object], detail: str | float) -> None:
    decision = decide(ending, endpoint=E, policy=POLICY, failures=failures)
    if isinstance(decision, Fail):
        assert type(decision.error) is follows and isinstance(detail, str) and detail in str(decision.error)
        assert E in str(decision.error)
    elif isinstance(decision, Retry):
        assert follows is Retry and decision.delay == detail and decision.retries == 3
        assert decision.attempt == (1 if ending.progressed else failures + 1)
    else:
        assert follows is type(DONE)


def test_a_policy_without_retries_fails_the_first_time() -> None:
    decision = decide(Ending(close_code=1006), endpoint=E, policy=rxstream.RetryPolicy(max_retries=0), failures=0)
    assert isinstance(decision, Fail) and isinstance(decision.error, rxstream.ConnectionLostError)
