"""The WebSocket source: frames of the chunk protocol from a live endpoint, with recovery.

The source hands frames downstream only while the demand below is ready, so a full
``backpressure_buffer`` stops it reading the socket: the connection pauses its transport,
TCP's window closes and the peer's sends block.
"""

from __future__ import annotations

import asyncio
import logging
import os
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import DATA_OPCODES, Frame
from websockets.protocol import Event, State

from . import operators as rxo
from .errors import (
    AuthenticationError,
    FrameTooLargeError,
    IncompleteStreamError,
    RateLimitedError,
    StreamError,
)
from .flow import Demand, Source, current_demand, current_resume, current_secrets, current_stats, taker
from .framing import FrameReader
from .model import Response
from .operators.accumulate import Delta
from .operators.persist import run_to_response
from .pipeline import pipeline
from .recovery import (
    RateLimiter,
    Restart,
    Session,
    SourceOptions,
    Token,
    Watchdog,
    retry_after,
)
from .redaction import RedactingLogger
from .retry import SYSTEM_CLOCK, Clock, RetryPolicy
from .sources import to_async_iterable
from .stage import fuse
from .store import ContextStore
from .transcript import Transcript

POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
CLOSE_TIMEOUT = 10.0  # the protocol: the server closes within 10 s after the final chunk


class PushConnection(ClientConnection):
    """A websockets client connection that hands each message to a sink as its bytes arrive.

    websockets' own receive path parses every frame in Python generators and queues it for
    ``recv()``: a queue, a future and a task switch per frame. Here the handshake goes to
    websockets, cut at the end of the HTTP response, and every byte after it to a
    ``FrameReader``, which pushes whole messages straight downstream and gives websockets'
    protocol every other frame. Flow control is exact: while the demand below is not ready
    the transport stops reading, so the TCP window closes and the peer's sends block; frames
    already read wait in a backlog no larger than one read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.take: Callable[[Iterator[bytes]], bool] | None = None  # the observer's, while attached
        self.demand: Demand | None = None
        self.backlog: deque[bytes] = deque()
        self.fragments: list[bytes] = []
        self.reading = True
        self.reader: FrameReader | None = None  # from the end of the handshake on
        self.head_end = b""  # the last bytes of the handshake read so far, for a terminator split across reads
        self.lost = False
        self.done: asyncio.Future[None] | None = None
        self.reads = 0  # network reads so far, for the session's watchdog

    def attach(self, observer: abc.ObserverBase[bytes], demand: Demand | None, done: asyncio.Future[None]) -> None:
        """Push messages to ``observer`` while ``demand`` is ready; resolve ``done`` when the connection is lost."""
        self.take = taker(observer)
        self.demand = demand
        self.done = done
        self.flush()
        if self.lost:
            self.connection_ended()

    def detach(self) -> None:
        """Take no more frames, and read again so that the closing handshake gets through."""
        self.take = None
        self.backlog.clear()
        self.set_reading(True)

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        if self.reader is not None:
            self.reader.feed(data)
        elif self.protocol.state is State.CONNECTING:
            self.handshake_received(data)
        else:
            super().data_received(data)

    def handshake_received(self, data: bytes) -> None:
        """Give websockets the HTTP response and nothing after it: the frames that follow reach
        the ``FrameReader`` from their first byte. (A 101 response has no body.)"""
        seen = self.head_end + data
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self.head_end = seen[-3:]
            super().data_received(data)
            return
        cut = end + 4 - len(self.head_end)
        super().data_received(data[:cut])
        if self.protocol.state is State.OPEN:
            limits = [size for size in (self.protocol.max_message_size, self.protocol.max_fragment_size) if size is not None]
            self.reader = FrameReader(self.deliver, self.to_protocol, min(limits, default=None))
            self.reader.feed(data[cut:])
        elif cut < len(data):
            super().data_received(data[cut:])

    def to_protocol(self, data: bytes) -> bool:
        """Let websockets' protocol read ``data`` (frames that are not whole messages, or all that
        follows one it will refuse); whether the connection is still open."""
        super().data_received(data)
        return self.protocol.state is State.OPEN

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.reader = None  # it holds this connection's methods: a cycle the collector would have to find
        self.lost = True
        self.connection_ended()

    def connection_ended(self) -> None:
        # Resolving the reader's own future here spares a task per connection to wait_closed().
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def eof_received(self) -> None:
        if self.reader is not None:
            self.reader.stop()  # websockets sees a frame cut short as such
        return super().eof_received()

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
        self.deliver([data])

    def deliver(self, messages: list[bytes]) -> None:
        """Messages, in order: downstream while the demand below is ready, the rest to the backlog."""
        demand = self.demand
        if self.backlog or self.take is None or (demand is not None and not demand.ready):
            self.backlog.extend(messages)
            self.hold_back()
            return
        self.push(iter(messages))

    def push(self, messages: Iterator[bytes]) -> None:
        """Give the observer ``messages`` while the demand is ready; keep the rest in the backlog."""
        demand = self.demand
        while True:
            take = self.take
            if take is None:  # detached on the way: disposed, or the stream is requested again
                return
            if not take(messages):
                break
            if demand is not None and not demand.ready:
                self.backlog.extend(messages)
                break
        if demand is not None and not demand.ready:
            self.hold_back()

    def hold_back(self) -> None:
        if self.reading and self.take is not None:
            self.set_reading(False)
            if self.demand is not None:
                self.demand.when_ready(self.flush)

    def flush(self) -> None:
        backlog, self.backlog = self.backlog, deque()
        self.push(iter(backlog))
        if self.take is None:
            return
        if self.demand is None or self.demand.ready:
            self.set_reading(True)
        else:
            self.reading = True  # so that hold_back registers again
            self.hold_back()

    def set_reading(self, reading: bool) -> None:
        if reading != self.reading and not self.transport.is_closing():
            (self.transport.resume_reading if reading else self.transport.pause_reading)()
        self.reading = reading


class _Session(Session[bytes]):
    """A WebSocket subscription: connects, pushes frames while there is demand, reconnects on failure."""

    options: _Options
    stop_reading: Callable[[], None] | None = None  # while reading: detach from the connection and end the read

    def interrupt(self) -> None:
        if self.stop_reading is not None:
            self.stop_reading()  # the loop sees ``disposed`` and closes politely
        else:
            super().interrupt()

    def request_restart(self, index: int) -> bool:
        if not super().request_restart(index):
            return False
        if self.stop_reading is not None:
            self.stop_reading()
        return True

    async def stream(self) -> None:
        while not self.disposed:
            position = self.position()
            connection = await self.connect()
            detail: str | None = None
            try:
                await self.send_request(connection, position)
                await self.read(connection)
            except ConnectionClosed as closed:
                detail = self.why_closed(closed)
            except Restart:
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
            headers = await self.request_headers("application/json-stream")
            try:
                connection = await connect(
                    self.uri,
                    create_connection=PushConnection,
                    additional_headers=headers,
                    max_size=options.max_size,
                    compression=None,  # permessage-deflate halves throughput
                    # No keepalive pings: while demand pauses the transport no pong could be read, so
                    # a slow consumer would look like a dead peer; the Watchdog ends a silent stream.
                    ping_interval=None,
                    close_timeout=CLOSE_TIMEOUT,
                    proxy=environment_proxy() if options.proxy is True else options.proxy,
                    open_timeout=options.stream_timeout,
                    # websockets logs the request's headers at debug, and the peer's headers and close reason
                    logger=RedactingLogger(logging.getLogger("websockets.client"), self.secrets),
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
                    raise RateLimitedError(self.endpoint, self.failures + 1, retry_after(error.response.headers.get("Retry-After"))) from None
                await self.back_off("429 Too Many Requests", False)
            except (TimeoutError, OSError, InvalidHandshake) as error:
                await self.back_off(f"cannot connect: {self.secrets.peer_text(str(error))}", False)

    async def send_request(self, connection: ClientConnection, position: int) -> None:
        request = self.options.request
        if position:
            request = {**(request or {}), "resume_from": position}
        if request is not None:
            await connection.send(orjson.dumps(request), text=True)

    async def read(self, connection: PushConnection) -> None:
        """Push frames downstream until the connection is lost (``ConnectionClosed``) or the
        subscription ends. Frames go straight to the observer: disposal and a restart request
        detach the connection when they happen, so nothing is checked per frame."""
        self.restart_requested = False
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def stop_reading() -> None:
            connection.detach()
            if not stop.done():
                stop.set_result(None)

        self.stop_reading = stop_reading
        watchdog = Watchdog(self, loop, lambda: connection.reads)
        try:
            connection.attach(self.observer, self.demand, stop)
            await stop
        finally:
            self.stop_reading = None
            watchdog.cancel()
            connection.detach()
        if self.restart_requested:
            raise Restart
        if not self.disposed:
            raise connection.protocol.close_exc

    def why_closed(self, closed: ConnectionClosed) -> str | None:
        received = closed.rcvd
        sent = closed.sent
        # ``from None``: ``closed`` holds the peer's close reason as it came, token and all.
        if received is not None and received.code == POLICY_VIOLATION:
            reason = self.secrets.peer_text(received.reason) or "policy violation"
            raise AuthenticationError(self.endpoint, f"close code 1008: {reason}") from None
        if sent is not None and sent.code == MESSAGE_TOO_BIG:
            raise FrameTooLargeError(self.endpoint, self.options.max_size) from None
        if received is not None and received.code in (1000, 1001):
            # A normal close before reorder completed is a stream cut short: ask again if reorder waits.
            return None if self.resume.position is None else "the server closed before the final chunk"
        return f"connection lost (close code {received.code if received else 1006})"

def environment_proxy() -> Literal[True] | None:
    """``True`` (websockets resolves the proxy) unless nothing can name one: then ``None``.

    websockets reads the whole environment four times for ``proxy=True``, about 0.1 ms a
    connection. Where only the environment names proxies (not on macOS or Windows, which
    have system settings) and no variable ends in ``_proxy`` in any case, it would find
    none, and one pass over the names says so for a tenth of that.
    """
    if urllib.request.getproxies is urllib.request.getproxies_environment and not any(name[-6:].lower() == "_proxy" for name in os.environ):
        return None
    return True


async def close(connection: PushConnection) -> None:
    """Close politely: read again (the transport may be paused by demand) so the closing handshake completes."""
    connection.detach()
    await connection.close()


@dataclass(frozen=True, slots=True)
class _Options(SourceOptions):
    """from_websocket's settings."""

    request: dict[str, Any] | None
    max_size: int
    proxy: str | Literal[True] | None


def from_websocket(
    uri: str,
    *,
    token: Token = None,
    headers: Mapping[str, str] | None = None,
    request: Mapping[str, Any] | None = None,
    max_size: int = 2**24,
    proxy: str | Literal[True] | None = True,
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
    ``proxy=True`` takes the proxy from the environment (``https_proxy``, ``no_proxy``, …)
    as websockets does, looked up again for every connection; ``None`` connects directly,
    and a URL such as ``"http://proxy:3128"`` or ``"socks5h://proxy:1080"`` goes through
    that proxy.
    """
    options = _Options(
        token=token,
        headers=dict(headers) if headers else None,
        request=dict(request) if request is not None else None,
        max_size=max_size,
        proxy=proxy,
        stream_timeout=stream_timeout,
        retry=retry,
        clock=clock,
        limiter=RateLimiter(rate_limit, clock),
    )

    def subscribe(observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        session = _Session(observer, uri, options, current_demand(), current_stats(), current_resume(), current_secrets())
        session.start(asyncio.get_running_loop())
        return Disposable(session.dispose)

    return Source(subscribe)


async def stream(
    uri: str, *, store: ContextStore | None = None, session_id: str | None = None, **options: Any
) -> Response:
    """The whole response at ``uri`` through the default pipeline (``from_websocket``'s options).

    With ``store`` and ``session_id`` the turn is saved there (the partial one too, when the
    stream fails) before this returns or raises.
    """
    return await run_to_response(from_websocket(uri, **options), pipeline(), store, session_id)


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
