"""What the network sources share: tokens, rate limiting, backoff, the idle watchdog, and recovery.

A ``Reconnector`` is one subscription of a source that can reconnect. It spends a retry budget
(``RetryPolicy``) on consecutive failures that made no progress, waits through the
injected ``Clock``, and cooperates with reorder through ``Resume`` so that a reconnect
delivers each index exactly once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from reactivex import abc

from ..core._demand import Demand, Resume
from ..core._errors import InvalidEndpointError, StreamError, StreamTimeoutError, TimeoutKind, TransportError
from ..core._redaction import Secrets
from ..core._values import Stats
from ..protocol._decision import Done, Ending, Fail, Retry, RetryPolicy, decide
from ._clock import Clock

_T = TypeVar("_T")
Token = str | Callable[[], str | Awaitable[str]] | None
logger = logging.getLogger("rxstream")
# As a library should: the application decides where records go. Without this, logging's last
# resort would print each retry into the middle of a terminal's live text.
logger.addHandler(logging.NullHandler())


def endpoint_of(uri: str) -> str:
    """The URI as errors show it: no credentials, no query string."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def checked_url(url: str, *, websocket: bool) -> str:
    """``url`` if the source can use it; otherwise ``InvalidEndpointError`` at once, with a hint:
    asking again would fail the same way, so it is never retried."""
    parts = urlsplit(url)
    schemes = ("ws", "wss") if websocket else ("http", "https")
    example = f"{schemes[1]}://{url}" if "://" not in url else f"{schemes[1]}://host/path"
    if not parts.scheme or "://" not in url:
        raise InvalidEndpointError(url, "has no scheme", f"write it in full, such as {example!r}")
    if websocket and parts.scheme in ("http", "https"):
        raise InvalidEndpointError(
            url,
            "is an HTTP URL, given to the WebSocket source",
            "for an SSE chat-completion endpoint use stream_sse (rxstream connect --sse), for an OpenAI "
            "Responses endpoint stream_responses (--responses); for a WebSocket endpoint write ws:// or wss://",
        )
    if parts.scheme not in schemes:
        other = "WebSocket" if websocket else "SSE"
        raise InvalidEndpointError(
            url,
            f"has the scheme {parts.scheme!r}",
            f"the {other} source takes {' or '.join(s + '://' for s in schemes)}",
        )
    if not parts.hostname:
        raise InvalidEndpointError(url, "names no host", f"write it in full, such as {example!r}")
    return url


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
    content_timeout: float | None
    deadline: float | None
    retry: RetryPolicy
    on_retry: Callable[[Retry], object] | None
    clock: Clock
    limiter: RateLimiter


class Reconnector(Generic[_T]):
    """One subscription of a network source: reads while there is demand, reconnects on failure.

    Subclasses implement ``stream``; this class holds what every transport shares: the
    retry budget and its backoff, the idle watchdog, disposal, and the ``Resume`` hooks to
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
        self.failures = 0  # consecutive tries that made no progress
        self.attempt_position = 0  # the index reorder needed when this try began
        self.disposed = False
        self.emitting = False
        self.restart_requested = False
        self.timed_out: StreamTimeoutError | None = (
            None  # set by the watchdog or the deadline before they cancel the task
        )
        self.task: asyncio.Task[None] | None = None
        resume.restart = self.request_restart

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.task = loop.create_task(self.run())
        deadline = self.options.deadline
        if deadline is not None:
            handle = loop.call_later(
                deadline, self.time_out, StreamTimeoutError(self.endpoint, deadline, kind="deadline")
            )
            self.task.add_done_callback(lambda _: handle.cancel())

    def time_out(self, error: StreamTimeoutError) -> None:
        """End the stream with ``error`` (the watchdog's or the deadline's), whatever it waits for."""
        if self.task is not None and self.timed_out is None:
            self.timed_out = error
            self.task.cancel()

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
        """Reorder's request for the stream again from ``index``: whether this try will be followed by one."""
        failures = 0 if index > self.attempt_position else self.failures
        if self.disposed or failures >= self.options.retry.max_retries or not self.resumable():
            return False
        self.restart_requested = True
        return True

    def resumable(self) -> bool:
        """Whether the rest of the stream can be asked for without starting a new response."""
        return True

    def why_not_resumable(self) -> str:
        """Why the rest cannot be asked for, and what to do, for the error; empty for the general reason."""
        return ""

    async def run(self) -> None:
        try:
            await self.stream()
        except asyncio.CancelledError:
            if self.timed_out is not None:
                self.end(self.timed_out)
            return
        except StreamError as error:
            self.end(error)
            return
        except Exception as error:  # a bug below us still ends the stream, typed and with its cause
            failure = TransportError(
                f"{self.endpoint}: unexpected {type(error).__name__}: {self.secrets.peer_text(str(error))}"
            )
            if not self.secrets.revealed_by(
                error
            ):  # a library's error may quote the peer (websockets' InvalidURI a redirect)
                failure.__cause__ = error
            self.end(failure)
            return
        self.end(None)

    async def stream(self) -> None:
        raise NotImplementedError

    def emit(self, item: _T) -> None:
        """Push one item downstream; ``dispose`` from inside it must not cancel the task mid-push.

        Nothing goes out once disposed: the sources are ``core._demand.Source``s, subscribed without
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

    def begin_attempt(self) -> int:
        """Note where a try begins, so that its progress can be told; the position it starts from."""
        self.attempt_position = self.position()
        return self.attempt_position

    def progressed(self) -> bool:
        """Whether this try delivered something new."""
        return self.position() > self.attempt_position

    async def follow(self, ending: Ending) -> bool:
        """Act on how a try ended: True after waiting for the next try, False when the stream is done.

        The transports report what they saw; whether the try made progress and whether the
        stream can be resumed are the reconnector's to tell. Raises the error ``decide`` chose;
        each retry is logged (WARNING, on the ``rxstream`` logger) and given to ``on_retry``
        before the wait.
        """
        resumable = self.resumable()
        ending = replace(
            ending,
            progressed=self.progressed(),
            resumable=resumable,
            why_not_resumable="" if resumable else self.why_not_resumable(),
        )
        decision = decide(ending, endpoint=self.endpoint, policy=self.options.retry, failures=self.failures)
        if isinstance(decision, Done):
            return False
        if isinstance(decision, Fail):
            raise decision.error
        self.failures = decision.attempt
        self.stats.retries += 1
        logger.warning(
            "%s: %s; retry %d of %d in %g s",
            decision.endpoint,
            decision.reason,
            decision.attempt,
            decision.retries,
            decision.delay,
        )
        if self.options.on_retry is not None:
            self.options.on_retry(decision)
        await self.options.clock.sleep(decision.delay)
        return True


class Watchdog:
    """Ends the stream when ``timeout`` seconds pass without ``progress`` while there is demand.

    Two watch each try: ``"idle"`` (``stream_timeout``), told of every read, keep-alive comments
    and pings included, finds a dead connection; ``"content"`` (``content_timeout``), told only of
    content (an event or message carrying a chunk), bounds a request the server keeps waiting
    with keep-alives. Both are told when demand comes back, so the time a slow consumer takes
    does not count. One timer, moved on only when it fires: nothing per frame, one clock read
    per read.
    """

    def __init__(
        self, reconnector: Reconnector[Any], loop: asyncio.AbstractEventLoop, timeout: float, kind: TimeoutKind
    ) -> None:
        self.reconnector = reconnector
        self.loop = loop
        self.timeout = timeout
        self.kind = kind
        self.moved = False  # progress came: what ends a content wait is no longer a queue
        self.progress_at = loop.time()
        self.handle = loop.call_at(self.progress_at + self.timeout, self.check)

    def progress(self) -> None:
        self.progress_at = self.loop.time()
        self.moved = True

    def consumer_ready(self) -> None:
        """Demand came back: the wait starts again from now."""
        self.progress_at = self.loop.time()

    def check(self) -> None:
        reconnector = self.reconnector
        now = self.loop.time()
        if reconnector.demand is not None and not reconnector.demand.ready:
            self.progress_at = now  # waiting for the consumer, not for the peer
        elif now >= self.progress_at + self.timeout:
            queued = self.kind == "content" and not self.moved
            reconnector.time_out(StreamTimeoutError(reconnector.endpoint, self.timeout, kind=self.kind, queued=queued))
            return
        self.handle = self.loop.call_at(self.progress_at + self.timeout, self.check)

    def cancel(self) -> None:
        self.handle.cancel()


class Timers:
    """The idle and the content watchdog of one try, told what the transport sees."""

    def __init__(self, reconnector: Reconnector[Any], loop: asyncio.AbstractEventLoop) -> None:
        options = reconnector.options
        self.idle = Watchdog(reconnector, loop, options.stream_timeout, "idle")
        self.content = (
            None if options.content_timeout is None else Watchdog(reconnector, loop, options.content_timeout, "content")
        )

    def alive(self) -> None:
        """Bytes came: a keep-alive, a ping, part of a frame, anything."""
        self.idle.progress()

    def content_came(self) -> None:
        """An event or message carrying content came."""
        if self.content is not None:
            self.content.progress()

    def consumer_ready(self) -> None:
        self.idle.consumer_ready()
        if self.content is not None:
            self.content.consumer_ready()

    def cancel(self) -> None:
        self.idle.cancel()
        if self.content is not None:
            self.content.cancel()


def retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is rare on these APIs and read as absent)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
