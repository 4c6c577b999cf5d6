"""The recovery decision both network sources follow, row by row (rxstream/protocol/_decision.py)."""

from __future__ import annotations

import pytest

import rxstream
from rxstream.protocol._decision import DONE, Ending, Fail, Retry, decide
from rxstream.protocol._error_body import read_error_body

POLICY = rxstream.RetryPolicy()  # 1, 2, 4 s; cap 10 s; 3 retries
E = "ws://host/stream"
UNEXPECTED = rxstream.UnexpectedContentTypeError
# The error bodies the providers document: Anthropic's https://docs.anthropic.com/en/api/errors
# (529 overloaded_error), OpenAI's https://platform.openai.com/docs/guides/error-codes.
ANTHROPIC_OVERLOADED = '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
OPENAI_TOO_LONG = (
    '{"error": {"message": "This model\'s maximum context length is 8192 tokens.", '
    '"type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}'
)
OPENAI_BAD_KEY = (
    '{"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", '
    '"param": null, "code": "invalid_api_key"}}'
)

ROWS: list[tuple[Ending, int, type[object], str | float]] = [
    # (how the try ended, failures before it, what follows, the retry's delay or the error's words)
    (Ending(finished=True), 0, type(DONE), ""),
    (Ending(finished=True, status=500), 3, type(DONE), ""),
    (Ending(status=401), 0, rxstream.AuthenticationError, "HTTP 401"),
    (Ending(status=403), 0, rxstream.AuthenticationError, "HTTP 403"),
    (Ending(status=404), 0, rxstream.APIStatusError, "answered HTTP 404"),
    (Ending(status=400), 0, rxstream.APIStatusError, "answered HTTP 400"),
    (Ending(status=302), 0, rxstream.APIStatusError, "answered HTTP 302"),
    (Ending(status=408), 0, Retry, 1.0),
    (Ending(status=429), 1, Retry, 2.0),
    (Ending(status=429, retry_after=3.0), 0, Retry, 3.0),  # at least what the server asks
    (Ending(status=429, retry_after=0.5), 2, Retry, 4.0),  # and exponential still
    (Ending(status=429, retry_after=86400.0), 0, Retry, 10.0),  # never past the cap
    (Ending(status=429), 3, rxstream.RateLimitedError, "429 Too Many Requests 4 times"),
    (Ending(status=503), 2, Retry, 4.0),
    (Ending(status=503), 3, rxstream.APIStatusError, "HTTP 503 (on each of 4 tries)"),
    (Ending(status=529, body=ANTHROPIC_OVERLOADED), 2, Retry, 4.0),  # Anthropic's overloaded, as a 503
    (Ending(status=529, body=ANTHROPIC_OVERLOADED), 3, rxstream.APIStatusError, "529 overloaded_error: Overloaded"),
    (Ending(status=400, body=OPENAI_TOO_LONG), 0, rxstream.APIStatusError, "400 context_length_exceeded: This model's"),
    (Ending(status=401, body=OPENAI_BAD_KEY), 0, rxstream.AuthenticationError, "invalid_api_key: Incorrect API key"),
    (Ending(status=429, body="slow down"), 3, rxstream.RateLimitedError, "Too Many Requests 4 times (slow down)"),
    (Ending(status=200, content_type="application/json", body=OPENAI_BAD_KEY), 0, UNEXPECTED, "Incorrect API key"),
    (Ending(status=200, content_type="text/html", body="<html>Sign in</html>"), 0, UNEXPECTED, "'text/html'"),
    (Ending(close_code=1008, reason="bad token"), 0, rxstream.AuthenticationError, "close code 1008: bad token"),
    (Ending(too_large=1024), 0, rxstream.FrameTooLargeError, "max_size=1024"),
    (Ending(gap=True), 0, Retry, 1.0),
    (Ending(stalled=0.5), 2, Retry, 4.0),
    (Ending(stalled=0.5), 3, rxstream.StreamTimeoutError, "not even a keep-alive, for 0.5 s"),
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


@pytest.mark.parametrize(
    "body, report",
    [
        (
            OPENAI_TOO_LONG,
            ("This model's maximum context length is 8192 tokens.", "invalid_request_error", "context_length_exceeded"),
        ),
        (ANTHROPIC_OVERLOADED, ("Overloaded", "overloaded_error", None)),
        (
            '{"error": {"code": 402, "message": "Insufficient credits"}}',
            ("Insufficient credits", None, "402"),
        ),  # OpenRouter
        (
            '{"object": "error", "message": "bad model", "type": "NotFoundError", "code": 404}',
            ("bad model", "NotFoundError", "404"),
        ),
        ('{"detail": "Not Found"}', ("Not Found", None, None)),
        ('{"error": "model not found"}', ("model not found", None, None)),
        ("upstream connect error\n", ("upstream connect error", None, None)),
        ("<html><body>502 Bad Gateway</body></html>", (None, None, None)),
        ("[1, 2]", (None, None, None)),
        ("", (None, None, None)),
    ],
)
def test_an_error_body_is_read_in_each_providers_shape(body: str, report: tuple[str | None, ...]) -> None:
    assert tuple(read_error_body(body)) == report


def test_a_refusal_carries_what_the_body_said() -> None:
    decision = decide(Ending(status=400, body=OPENAI_TOO_LONG), endpoint=E, policy=POLICY, failures=0)
    assert isinstance(decision, Fail) and isinstance(decision.error, rxstream.APIStatusError)
    error = decision.error
    assert (error.status_code, error.error_type, error.error_code) == (
        400,
        "invalid_request_error",
        "context_length_exceeded",
    )
    assert (
        error.server_message == "This model's maximum context length is 8192 tokens." and error.body == OPENAI_TOO_LONG
    )
