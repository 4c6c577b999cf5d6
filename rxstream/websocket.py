"""The WebSocket source: frames of the chunk protocol from a live endpoint, with recovery.

The source reads one frame at a time and only while the demand below is ready, so a full
``backpressure_buffer`` stops it reading the socket: websockets then stops reading the
transport once ``max_queue`` frames wait, TCP's window closes and the peer's sends block.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import DATA_OPCODES, Frame
from websockets.protocol import Event

from . import operators as rxo
from .errors import (
    AuthenticationError,
    ConnectionLostError,
    FrameTooLargeError,
    IncompleteStreamError,
    RateLimitedError,
    StreamError,
    StreamTimeoutError,
    TransportError,
)
from .flow import Demand, Resume, current_demand, current_resume, current_stats
from .model import Response, Stats
from .operators.accumulate import Delta
from .pipeline import pipeline
from .retry import SYSTEM_CLOCK, Clock, RetryPolicy
from .sources import to_async_iterable
from .stage import fuse
from .store import ContextStore
from .transcript import Transcript

Token = str | Callable[[], str | Awaitable[str]] | None
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
CLOSE_TIMEOUT = 10.0  # the protocol: the server closes within 10 s after the final chunk


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


class PushConnection(ClientConnection):
    """A websockets client connection that hands each data frame to a sink from ``data_received``.

    websockets' own receive path queues every frame for ``recv()``: a queue, a future and a
    task switch per frame. Driving its sans-I/O protocol from the asyncio protocol callback
    and pushing straight downstream receives about 1.45x faster. Flow control is exact:
    while the demand below is not ready the transport stops reading, so the TCP window
    closes and the peer's sends block; frames already read wait in a backlog no larger
    than one read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sink: Callable[[bytes], None] | None = None
        self.demand: Demand | None = None
        self.backlog: deque[bytes] = deque()
        self.fragments: list[bytes] = []
        self.reading = True

    def attach(self, sink: Callable[[bytes], None], demand: Demand | None) -> None:
        self.sink = sink
        self.demand = demand
        self.flush()

    def detach(self) -> None:
        """Take no more frames, and read again so that the closing handshake gets through."""
        self.sink = None
        self.backlog.clear()
        self.set_reading(True)

    def process_event(self, event: Event) -> None:
        if not isinstance(event, Frame) or event.opcode not in DATA_OPCODES:
            super().process_event(event)  # the handshake, pings, pongs and close
            return
        data = event.data if type(event.data) is bytes else bytes(event.data)
        if not event.fin or self.fragments:
            self.fragments.append(data)
            if not event.fin:
                return
            data = b"".join(self.fragments)
            self.fragments.clear()
        demand = self.demand
        if self.backlog or self.sink is None or (demand is not None and not demand.ready):
            self.backlog.append(data)
            self.hold_back()
            return
        self.sink(data)
        if demand is not None and not demand.ready:
            self.hold_back()

    def hold_back(self) -> None:
        if self.reading and self.sink is not None:
            self.set_reading(False)
            if self.demand is not None:
                self.demand.when_ready(self.flush)

    def flush(self) -> None:
        demand = self.demand
        backlog = self.backlog
        while backlog and self.sink is not None and (demand is None or demand.ready):
            self.sink(backlog.popleft())
        if self.sink is None:
            return
        if demand is None or demand.ready:
            self.set_reading(True)
        else:
            self.reading = True  # so that hold_back registers again
            self.hold_back()

    def set_reading(self, reading: bool) -> None:
        if reading != self.reading and not self.transport.is_closing():
            (self.transport.resume_reading if reading else self.transport.pause_reading)()
        self.reading = reading


class _Restart(Exception):
    """Reorder asked for the stream again from an index (a gap it cannot close)."""


class _Session:
    """One subscription: connects, reads frames while there is demand, reconnects on failure."""

    def __init__(
        self,
        observer: abc.ObserverBase[bytes],
        uri: str,
        options: _Options,
        demand: Demand | None,
        stats: Stats,
        resume: Resume,
    ) -> None:
        self.observer = observer
        self.uri = uri
        self.endpoint = endpoint_of(uri)
        self.options = options
        self.demand = demand
        self.stats = stats
        self.resume = resume
        self.delays = list(options.retry.delays())
        self.failures = 0  # consecutive tries that made no progress
        self.disposed = False
        self.emitting = False
        self.restart_requested = False
        self.timed_out = False
        self.frames = 0
        self.task: asyncio.Task[None] | None = None
        resume.restart = self.request_restart

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.task = loop.create_task(self.run())

    def dispose(self) -> None:
        self.disposed = True
        if self.resume.restart == self.request_restart:
            self.resume.restart = None
        # From inside on_next (reorder completing on the final chunk) the loop sees the flag
        # and closes politely; from outside, the pending read is cancelled.
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
                self.observer.on_error(StreamTimeoutError(self.endpoint, self.options.stream_timeout))
            return
        except StreamError as error:
            self.observer.on_error(error)
            return
        except Exception as error:  # a bug below us still ends the stream, typed and with its cause
            failure = TransportError(f"{self.endpoint}: unexpected {type(error).__name__}: {error}")
            failure.__cause__ = error
            self.observer.on_error(failure)
            return
        if not self.disposed:
            self.observer.on_completed()

    # -- the loop --------------------------------------------------------------------------

    async def stream(self) -> None:
        while not self.disposed:
            position = self.resume.position() if self.resume.position is not None else 0
            connection = await self.connect()
            detail: str | None = None
            try:
                await self.send_request(connection, position)
                await self.read(connection)
            except ConnectionClosed as closed:
                detail = self.why_closed(closed)
            except _Restart:
                detail = "a gap in the chunk indices (40002 Invalid Chunk): requesting the stream again"
            finally:
                await close(connection)
            if self.disposed:
                return
            if detail is None:
                return  # the server closed normally and no reorder stage waits for more
            progressed = self.resume.position is not None and self.resume.position() > position
            await self.back_off(detail, progressed)

    async def connect(self) -> PushConnection:
        """Open a connection, retrying 429 and network failures on the policy's schedule."""
        options = self.options
        while True:
            await options.limiter.acquire()
            headers = {"Accept": "application/json-stream", **(options.headers or {})}
            token = await resolve_token(options.token)
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            try:
                connection = await connect(
                    self.uri,
                    create_connection=PushConnection,
                    additional_headers=headers,
                    max_size=options.max_size,
                    compression=None,  # permessage-deflate halves throughput
                    close_timeout=CLOSE_TIMEOUT,
                    open_timeout=options.stream_timeout,
                )
                return cast(PushConnection, connection)
            except InvalidStatus as error:
                status = error.response.status_code
                if status in (401, 403):
                    raise AuthenticationError(self.endpoint, f"HTTP {status}") from None
                if status != 429:
                    await self.back_off(f"HTTP {status} at the handshake", False)
                    continue
                if self.failures >= len(self.delays):
                    raise RateLimitedError(self.endpoint, self.failures + 1, _retry_after(error)) from None
                await self.back_off("429 Too Many Requests", False)
            except (TimeoutError, OSError, InvalidHandshake) as error:
                await self.back_off(f"cannot connect: {error}", False)

    async def send_request(self, connection: ClientConnection, position: int) -> None:
        request = self.options.request
        if position:
            request = {**(request or {}), "resume_from": position}
        if request is not None:
            await connection.send(orjson.dumps(request), text=True)

    async def read(self, connection: PushConnection) -> None:
        """Push frames downstream until the connection closes (``ConnectionClosed``) or the subscription ends."""
        self.restart_requested = False
        on_next = self.observer.on_next
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def push(frame: bytes) -> None:
            self.frames += 1
            self.emitting = True
            try:
                on_next(frame)
            finally:
                self.emitting = False
            if (self.restart_requested or self.disposed) and not stop.done():
                connection.detach()
                stop.set_result(None)

        closed = asyncio.ensure_future(connection.wait_closed())
        watchdog = _Watchdog(self, loop)
        connection.attach(push, self.demand)
        try:
            await asyncio.wait((stop, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watchdog.cancel()
            closed.cancel()
            connection.detach()
        if self.restart_requested:
            raise _Restart
        if not self.disposed:
            raise connection.protocol.close_exc

    def why_closed(self, closed: ConnectionClosed) -> str | None:
        received = closed.rcvd
        sent = closed.sent
        if received is not None and received.code == POLICY_VIOLATION:
            raise AuthenticationError(self.endpoint, f"close code 1008: {received.reason or 'policy violation'}")
        if sent is not None and sent.code == MESSAGE_TOO_BIG:
            raise FrameTooLargeError(self.endpoint, self.options.max_size)
        if received is not None and received.code in (1000, 1001):
            # A normal close before reorder completed is a stream cut short: ask again if reorder waits.
            return None if self.resume.position is None else "the server closed before the final chunk"
        return f"connection lost (close code {received.code if received else 1006})"

    async def back_off(self, detail: str, progressed: bool) -> None:
        if progressed:
            self.failures = 0
        if self.failures >= len(self.delays):
            raise ConnectionLostError(self.endpoint, detail, self.failures + 1)
        delay = self.delays[self.failures]
        self.failures += 1
        self.stats.retries += 1
        await self.options.clock.sleep(delay)



class _Watchdog:
    """Ends the stream if no frame arrives for ``stream_timeout`` seconds while there is demand.

    A timer checked once a period rather than a timeout around each read: it costs
    nothing per frame.
    """

    def __init__(self, session: _Session, loop: asyncio.AbstractEventLoop) -> None:
        self.session = session
        self.loop = loop
        self.frames_then = session.frames
        self.handle = loop.call_later(session.options.stream_timeout, self.check)

    def check(self) -> None:
        session = self.session
        held_back = session.demand is not None and not session.demand.ready
        if session.frames == self.frames_then and not held_back and session.task is not None:
            session.timed_out = True
            session.task.cancel()
            return
        self.frames_then = session.frames
        self.handle = self.loop.call_later(session.options.stream_timeout, self.check)

    def cancel(self) -> None:
        self.handle.cancel()


async def close(connection: PushConnection) -> None:
    """Close politely: read again (the transport may be paused by demand) so the closing handshake completes."""
    connection.detach()
    await connection.close()


def _retry_after(error: InvalidStatus) -> float | None:
    value = error.response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Options:
    """from_websocket's settings, shared by every subscription (and so its rate limiter)."""

    token: Token = field(repr=False)  # never in a repr
    headers: dict[str, str] | None
    request: dict[str, Any] | None
    max_size: int
    stream_timeout: float
    retry: RetryPolicy
    clock: Clock
    limiter: RateLimiter


def from_websocket(
    uri: str,
    *,
    token: Token = None,
    headers: Mapping[str, str] | None = None,
    request: Mapping[str, Any] | None = None,
    max_size: int = 2**24,
    stream_timeout: float = 30.0,
    retry: RetryPolicy = RetryPolicy(),
    rate_limit: float = 50.0,
    clock: Clock = SYSTEM_CLOCK,
) -> Observable[bytes]:
    """An Observable of the raw frames (UTF-8 bytes) of the stream at ``uri``.

    Sends ``Authorization: Bearer <token>`` (``token`` may be a callable, sync or async,
    called again for every connection), ``Accept: application/json-stream`` and
    ``headers``, then ``request`` as the first message. Frames above ``max_size`` end the
    stream (``FrameTooLargeError``); so does ``stream_timeout`` seconds of silence while
    there is demand (``StreamTimeoutError``). A 429 at the handshake, a dropped connection
    (1006) or a stream cut short is retried on ``retry``'s schedule, re-authenticating,
    with ``"resume_from"`` set in the request to the next index reorder needs; a server
    that ignores it replays, and reorder drops what was delivered already. Connection
    attempts are spaced to at most ``rate_limit`` per second. Waits go through ``clock``.
    """
    options = _Options(
        token=token,
        headers=dict(headers) if headers else None,
        request=dict(request) if request is not None else None,
        max_size=max_size,
        stream_timeout=stream_timeout,
        retry=retry,
        clock=clock,
        limiter=RateLimiter(rate_limit, clock),
    )

    def subscribe(observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        session = _Session(observer, uri, options, current_demand(), current_stats(), current_resume())
        session.start(asyncio.get_running_loop())
        return Disposable(session.dispose)

    return Observable(subscribe)


async def stream(
    uri: str, *, store: ContextStore | None = None, session_id: str | None = None, **options: Any
) -> Response:
    """The whole response at ``uri`` through the default pipeline (``from_websocket``'s options).

    With ``store`` and ``session_id`` the turn is saved there (the partial one too, when the
    stream fails) before this returns or raises.
    """
    operators: list[Any] = [pipeline()]
    if store is not None:
        if session_id is None:
            raise ValueError("stream(store=...) needs a session_id to save the turn under")
        operators.append(rxo.persist(store, session_id))
    response: Response = await from_websocket(uri, **options).pipe(*operators)
    return response


async def stream_text(uri: str, **options: Any) -> AsyncIterator[str]:
    """The text deltas of the response at ``uri`` as they arrive, for code that does not use Rx.

    Fails with ``IncompleteStreamError`` (the partial response on it) if the stream does.
    """
    text_pipeline = fuse(rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate())
    deltas = to_async_iterable(cast(Observable[Delta], from_websocket(uri, **options).pipe(text_pipeline)))
    transcript = Transcript()
    try:
        async for delta in deltas:
            transcript = delta.transcript
            if delta.text:
                yield delta.text
    except StreamError as error:
        raise IncompleteStreamError(transcript.response(False, deltas.stats), f"{type(error).__name__}: {error}") from error  # type: ignore[attr-defined]
    finally:
        await deltas.aclose()  # type: ignore[attr-defined]
