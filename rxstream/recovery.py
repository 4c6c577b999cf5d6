"""What the network sources share: tokens, rate limiting, backoff, the idle watchdog, and recovery.

A ``Session`` is one subscription of a source that can reconnect. It spends a retry budget
(``RetryPolicy``) on consecutive failures that made no progress, waits through the
injected ``Clock``, and cooperates with reorder through ``Resume`` so that a reconnect
delivers each index exactly once.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from reactivex import abc

from .errors import ConnectionLostError, StreamError, StreamTimeoutError, TransportError
from .flow import Demand, Resume
from .model import Stats
from .redaction import Secrets
from .retry import Clock, RetryPolicy

_T = TypeVar("_T")
Token = str | Callable[[], str | Awaitable[str]] | None


def endpoint_of(uri: str) -> str:
    """The URI as errors show it: no credentials, no query string."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def resolve_token(token: Token) -> str | None:
    """The token for the next connection: a callable is called again each time (re-authentication)."""
    if token is None or isinstance(token, str):
        return token
    value = token()
    return await value if inspect.isawaitable(value) else value


class RateLimiter:
    """Spaces connection attempts at least ``1 / rate`` seconds apart, on ``clock``."""

    def __init__(self, rate: float, clock: Clock) -> None:
        if rate <= 0:
            raise ValueError("rate_limit must be positive")
        self.interval = 1.0 / rate
        self.clock = clock
        self.next_allowed = float("-inf")

    async def acquire(self) -> None:
        now = self.clock.monotonic()
        if self.next_allowed > now:
            await self.clock.sleep(self.next_allowed - now)
            now = self.next_allowed
        self.next_allowed = now + self.interval


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """The settings every network source has; shared by its subscriptions (and so is its rate limiter)."""

    token: Token = field(repr=False)  # never in a repr
    headers: dict[str, str] | None
    stream_timeout: float
    retry: RetryPolicy
    clock: Clock
    limiter: RateLimiter


class Restart(Exception):
    """Reorder asked for the stream again from an index (a gap it cannot close)."""


class Session(Generic[_T]):
    """One subscription of a network source: reads while there is demand, reconnects on failure.

    Subclasses implement ``stream``; this class holds what every transport shares: the
    retry budget and its backoff, the idle watchdog, disposal, and the ``Resume`` link to
    reorder (``request_restart`` is how reorder asks for the stream again).
    """

    def __init__(
        self,
        observer: abc.ObserverBase[_T],
        uri: str,
        options: SourceOptions,
        demand: Demand | None,
        stats: Stats,
        resume: Resume,
        secrets: Secrets,
    ) -> None:
        self.observer = observer
        self.uri = uri
        self.endpoint = endpoint_of(uri)
        self.options = options
        self.demand = demand
        self.stats = stats
        self.resume = resume
        self.secrets = secrets  # every token sent: peer text quoted in an error goes through secrets.peer_text
        self.delays = list(options.retry.delays())
        self.failures = 0  # consecutive tries that made no progress
        self.disposed = False
        self.emitting = False
        self.restart_requested = False
        self.timed_out = False
        self.reads = 0  # network reads so far, for the watchdog
        self.task: asyncio.Task[None] | None = None
        resume.restart = self.request_restart

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.task = loop.create_task(self.run())

    def dispose(self) -> None:
        self.disposed = True
        if self.resume.restart == self.request_restart:
            self.resume.restart = None
        self.interrupt()

    def interrupt(self) -> None:
        """Stop what the task is waiting for, once disposed. From inside on_next (reorder
        completing on the final chunk) the loop sees the flag and closes politely; from
        outside, the pending wait is cancelled."""
        if self.task is not None and not self.emitting:
            self.task.cancel()

    def request_restart(self, index: int) -> bool:
        if self.disposed or self.failures >= len(self.delays):
            return False
        self.restart_requested = True
        return True

    async def run(self) -> None:
        try:
            await self.stream()
        except asyncio.CancelledError:
            if self.timed_out:
                self.end(StreamTimeoutError(self.endpoint, self.options.stream_timeout))
            return
        except StreamError as error:
            self.end(error)
            return
        except Exception as error:  # a bug below us still ends the stream, typed and with its cause
            failure = TransportError(f"{self.endpoint}: unexpected {type(error).__name__}: {self.secrets.peer_text(str(error))}")
            if not self.secrets.revealed_by(error):  # a library's error may quote the peer (websockets' InvalidURI a redirect)
                failure.__cause__ = error
            self.end(failure)
            return
        self.end(None)

    async def stream(self) -> None:
        raise NotImplementedError

    def emit(self, item: _T) -> None:
        """Push one item downstream; ``dispose`` from inside it must not cancel the task mid-push.

        Nothing goes out once disposed: the sources are ``flow.Source``s, subscribed without
        RxPY's ``AutoDetachObserver``, which would otherwise drop it.
        """
        if self.disposed:
            return
        self.emitting = True
        try:
            self.observer.on_next(item)
        finally:
            self.emitting = False

    def end(self, error: Exception | None) -> None:
        """The one terminal event, unless disposed first."""
        if self.disposed:
            return
        if error is None:
            self.observer.on_completed()
        else:
            self.observer.on_error(error)

    async def request_headers(self, accept: str) -> dict[str, str]:
        """The headers of the next request: ``Accept``, the caller's, and a fresh bearer token."""
        headers = {"Accept": accept, **(self.options.headers or {})}
        token = await resolve_token(self.options.token)
        if token is not None:
            self.secrets.add(token)
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def position(self) -> int:
        """The next index reorder needs, or 0 without a reorder stage."""
        return self.resume.position() if self.resume.position is not None else 0

    async def back_off(self, detail: str, progressed: bool, delay: float | None = None) -> None:
        """Wait before the next try (``delay``, say a Retry-After, or the policy's), or give up."""
        if progressed:
            self.failures = 0
        if self.failures >= len(self.delays):
            # Not chained to the failure being handled: a library's may quote the peer, token and all; ``detail`` says what it was.
            raise ConnectionLostError(self.endpoint, detail, self.failures + 1) from None
        wait = self.delays[self.failures] if delay is None else delay
        self.failures += 1
        self.stats.retries += 1
        await self.options.clock.sleep(wait)


class Watchdog:
    """Ends the stream if nothing arrives for ``stream_timeout`` seconds while there is demand.

    A timer checked once a period rather than a timeout around each read: it costs
    nothing per frame. ``reads`` counts the network reads so far.
    """

    def __init__(self, session: Session[Any], loop: asyncio.AbstractEventLoop, reads: Callable[[], int]) -> None:
        self.session = session
        self.loop = loop
        self.reads = reads
        self.reads_then = reads()
        self.handle = loop.call_later(session.options.stream_timeout, self.check)

    def check(self) -> None:
        session = self.session
        held_back = session.demand is not None and not session.demand.ready
        reads = self.reads()
        if reads == self.reads_then and not held_back and session.task is not None:
            session.timed_out = True
            session.task.cancel()
            return
        self.reads_then = reads
        self.handle = self.loop.call_later(session.options.stream_timeout, self.check)

    def cancel(self) -> None:
        self.handle.cancel()


def retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is rare on these APIs and read as absent)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


