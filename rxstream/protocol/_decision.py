"""What to do when an attempt at a stream ends: done, try again after a delay, or fail.

Sans I/O: each network source describes how an attempt ended as an ``Ending`` (the facts
either transport can see) and acts on what ``decide`` answers, so the WebSocket and the SSE
source cannot drift apart. Timeouts and disposal are not decided here: they end the stream
where they happen.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core._errors import (
    APIStatusError,
    AuthenticationError,
    ConnectionLostError,
    FrameTooLargeError,
    RateLimitedError,
    StreamError,
    StreamTimeoutError,
    UnexpectedContentTypeError,
)
from ._error_body import read_error_body

NORMAL_CLOSURE = 1000
ABNORMAL_CLOSURE = 1006  # what a connection that dropped without a close frame counts as
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
# The close codes worth reconnecting on, as the openai SDK has them: going away, no status,
# aborted, internal error, service restart, try again later, TLS handshake failure.
RETRIED_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})
RETRIED_STATUSES = frozenset({408, 429})  # besides every 5xx (Anthropic's 529 overloaded_error among them)


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


@dataclass(frozen=True, slots=True)
class Ending:
    """How one attempt ended. Everything defaults to "nothing of the kind happened".

    ``reason`` is peer text (a close reason), already made safe to show. A transport reports
    what it saw; ``progressed`` and ``resumable`` are filled in by its session.
    """

    finished: bool = False  # nothing more is awaited: the final chunk came, or no reorder stage waits for one
    status: int | None = None  # an HTTP status that refused the stream (neither 101 nor 200)
    retry_after: float | None = None  # the refusal's Retry-After, in seconds
    body: str = ""  # the refusal's (or wrong content type's) body: a bounded prefix, already redacted
    content_type: str | None = None  # a 200's Content-Type that is not text/event-stream
    close_code: int | None = None  # the WebSocket close code received (1006: none, the connection dropped)
    reason: str = ""
    network: str | None = None  # a failure to connect or to read, described
    cut_short: bool = False  # the peer closed normally (close code 1000) before the final chunk
    gap: bool = False  # reorder asked for the stream again (40002 Invalid Chunk)
    stalled: float | None = None  # the stream_timeout that passed without an event, ending this try (not the stream)
    too_large: int | None = None  # the max_size a frame or event exceeded
    progressed: bool = False  # something new was delivered: the failures before this one are forgiven
    resumable: bool = True  # the rest can be asked for without starting a new (paid) response
    why_not_resumable: str = ""  # when it cannot, why and what to do (the source's; a default otherwise)


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again after ``delay`` seconds: the ``attempt``-th retry of at most ``retries``, because of ``reason``."""

    endpoint: str
    reason: str
    attempt: int
    retries: int
    delay: float


@dataclass(frozen=True, slots=True)
class Fail:
    """End the stream with ``error``."""

    error: StreamError


class Done:
    """The stream ended as it should."""

    __slots__ = ()


DONE = Done()
Decision = Retry | Fail | Done


def status_error(endpoint: str, status: int, ending: Ending, attempts: int) -> APIStatusError:
    """The error for a refusal with ``status``, carrying what the body said."""
    report = read_error_body(ending.body)
    if status in (401, 403):
        return AuthenticationError(
            endpoint,
            f"HTTP {status}",
            status_code=status,
            server_message=report.message,
            error_type=report.type,
            error_code=report.code,
            body=ending.body,
        )
    if status == 429:
        return RateLimitedError(
            endpoint,
            attempts,
            ending.retry_after,
            server_message=report.message,
            error_type=report.type,
            error_code=report.code,
            body=ending.body,
        )
    return APIStatusError(
        endpoint,
        status,
        server_message=report.message,
        error_type=report.type,
        error_code=report.code,
        body=ending.body,
        attempts=attempts,
    )


def decide(ending: Ending, *, endpoint: str, policy: RetryPolicy, failures: int) -> Decision:
    """What follows ``ending``, after ``failures`` consecutive failed attempts that made no progress."""
    if ending.finished:
        return DONE
    failures = 0 if ending.progressed else failures
    attempts = failures + 1
    status = ending.status
    if ending.content_type is not None:  # not an event stream: asking again would get the same page
        message = read_error_body(ending.body).message
        return Fail(UnexpectedContentTypeError(endpoint, ending.content_type, ending.body, server_message=message))
    if status is not None:
        refusal = status_error(endpoint, status, ending, attempts)
        if (status not in RETRIED_STATUSES and status < 500) or failures >= policy.max_retries:
            return Fail(refusal)
        reason = ("429 Too Many Requests" if status == 429 else f"HTTP {status}") + refusal.said()
    elif ending.close_code == POLICY_VIOLATION:
        return Fail(AuthenticationError(endpoint, f"close code 1008: {ending.reason or 'policy violation'}"))
    elif ending.too_large is not None:
        return Fail(FrameTooLargeError(endpoint, ending.too_large))
    elif ending.gap:
        reason = "a gap in the chunk indices (40002 Invalid Chunk): requesting the stream again"
    elif ending.stalled is not None:
        reason = f"nothing for {ending.stalled:g} s (stream_timeout)"
    elif ending.network is not None:
        reason = f"connection lost ({ending.network})"
    elif ending.cut_short:
        reason = "the server closed before the final chunk"
    elif ending.close_code is not None:
        said = f": {ending.reason}" if ending.reason else ""
        reason = f"connection lost (close code {ending.close_code}{said})"
        if ending.close_code not in RETRIED_CLOSE_CODES:
            return Fail(ConnectionLostError(endpoint, f"{reason}, a code that is not retried", attempts))
    else:  # an HTTP body that ended, cleanly, before the final chunk
        reason = "the body ended before the final chunk"
    if not ending.resumable:
        return Fail(
            ConnectionLostError(
                endpoint,
                f"{reason}; "
                + (
                    ending.why_not_resumable
                    or "the events carry no id to resume from, and asking again would start a new response: "
                    "pass replay='deterministic' if the server sends the same events again"
                ),
                attempts,
            )
        )
    if failures >= policy.max_retries:
        if ending.stalled is not None:
            return Fail(StreamTimeoutError(endpoint, ending.stalled))
        return Fail(ConnectionLostError(endpoint, reason, attempts))
    # At least what the server asks for, exponential still, and never past the cap: a peer's
    # Retry-After of a day must not hang the client.
    delay = min(max(policy.delay(failures), ending.retry_after or 0.0), policy.cap)
    return Retry(endpoint, reason, failures + 1, policy.max_retries, delay)
