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
from .decision import ABNORMAL_CLOSURE, MESSAGE_TOO_BIG, NORMAL_CLOSURE, Ending, Retry
from .errors import IncompleteStreamError, StreamError
from .flow import Demand, Source, current_demand, current_resume, current_secrets, current_stats, taker
from .framing import FrameReader
from .model import Response
from .operators.accumulate import Delta
from .operators.persist import run_to_response
from .pipeline import pipeline
from .recovery import RateLimiter, Session, SourceOptions, Token, Watchdog, retry_after
from .redaction import RedactingLogger, Secrets
from .retry import SYSTEM_CLOCK, Clock, RetryPolicy
from .sources import to_async_iterable
from .stage import fuse
from .store import ContextStore
from .transcript import Transcript

CLOSE_TIMEOUT = 10.0  # the protocol: the server closes within 10 s after the final chunk


class PushConnection(ClientConnection):
    """A websockets client connection that hands each message to a sink as its bytes arrive.

    websockets' own receive path parses every frame in Python generators and queues it for
    ``recv()``: a queue, a future and a task switch per frame. Here the handshake goes to
    websockets, cut at the end of the HTTP response, and every byte after it to a
    ``FrameReader``, which pushes whole messages straight downstream and gives websockets'
    protocol every other frame. Flow control is exact: while the demand below is not ready,
    or before anyone is attached, the transport stops reading, so the TCP window closes and
    the peer's sends block; frames already read wait in a backlog no larger than one read.
    Once detached, the connection only reads to see the closing handshake through, and drops
    every message: a peer that floods after the end costs no memory.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.take: Callable[[Iterator[bytes]], bool] | None = None  # the observer's, while attached
        self.demand: Demand | None = None
        self.backlog: deque[bytes] = deque()
        self.fragments: list[bytes] = []
        self.reading = True
        self.detached = False  # for good: the stream is over for this connection
        self.reader: FrameReader | None = None  # from the end of the handshake on
        self.head_end = b""  # the last bytes of the handshake read so far, for a terminator split across reads
        self.lost = False
        self.done: asyncio.Future[None] | None = None
        self.progress: Callable[[], None] | None = None  # told once a read that completes a message

    def attach(
        self,
        observer: abc.ObserverBase[bytes],
        demand: Demand | None,
        done: asyncio.Future[None],
        progress: Callable[[], None] | None = None,
    ) -> None:
        """Push messages to ``observer`` while ``demand`` is ready, telling ``progress`` as they
        arrive; resolve ``done`` once the connection has ended and every message it read is handed on."""
        self.take = taker(observer)
        self.demand = demand
        self.done = done
        self.progress = progress
        self.flush()

    def detach(self) -> None:
        """Take no more messages, and read again so that the closing handshake gets through."""
        self.take = None
        self.progress = None
        self.detached = True
        self.backlog.clear()
        self.fragments.clear()
        self.set_reading(True)

    def data_received(self, data: bytes) -> None:
        if self.reader is not None:
            self.reader.feed(data)
        elif self.protocol.state is State.CONNECTING:
            self.handshake_received(data)
        else:
            super().data_received(data)
            self.check_ended()

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
        self.check_ended()
        return self.protocol.state is State.OPEN

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.reader = None  # it holds this connection's methods: a cycle the collector would have to find
        self.lost = True
        self.check_ended()

    def check_ended(self) -> None:
        """Resolve ``done`` once the stream can bring nothing more: the connection is closing
        (a close frame either way) or lost, and the backlog is handed on. Not waiting for the
        closing handshake is what reports a failure at once, whatever the peer does next."""
        done = self.done
        if done is not None and not done.done() and not self.backlog and (self.lost or self.protocol.state is not State.OPEN):
            done.set_result(None)

    def eof_received(self) -> None:
        if self.reader is not None:
            self.reader.stop()  # websockets sees a frame cut short as such
        return super().eof_received()

    def process_event(self, event: Event) -> None:
        if not isinstance(event, Frame) or event.opcode not in DATA_OPCODES:
            super().process_event(event)  # the handshake, pings, pongs and close
            return
        if self.detached:
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
        if self.detached:
            return
        if self.progress is not None:
            self.progress()
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
        if self.reading:
            self.set_reading(False)
            if self.take is not None and self.demand is not None:
                self.demand.when_ready(self.flush)

    def flush(self) -> None:
        if self.progress is not None:
            self.progress()  # the time the consumer took is not the peer's silence
        backlog, self.backlog = self.backlog, deque()
        self.push(iter(backlog))
        if self.take is None:
            return
        if self.demand is None or self.demand.ready:
            self.set_reading(True)
            self.check_ended()
        else:
            self.reading = True  # so that hold_back registers again
            self.hold_back()

    def set_reading(self, reading: bool) -> None:
        if reading != self.reading and not self.transport.is_closing():
            (self.transport.resume_reading if reading else self.transport.pause_reading)()
        self.reading = reading

    def ending(self, awaited: bool, secrets: Secrets) -> Ending:
        """How the connection ended, for ``decide``; ``awaited``: a reorder stage waits for more.
        The peer's close reason is quoted through ``secrets``."""
        protocol = self.protocol
        received, sent = protocol.close_rcvd, protocol.close_sent
        if sent is not None and sent.code == MESSAGE_TOO_BIG and received is None:
            return Ending(too_large=protocol.max_message_size)
        code = received.code if received is not None else ABNORMAL_CLOSURE
        if not awaited:
            return Ending(finished=code in (NORMAL_CLOSURE, 1001))
        reason = secrets.peer_text(received.reason) if received is not None else ""
        return Ending(close_code=code, reason=reason, cut_short=code == NORMAL_CLOSURE)


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
            ending = await self.attempt()
            if self.disposed or not await self.follow(ending):
                return

    async def attempt(self) -> Ending:
        """One connection, from the handshake to its end: how it ended."""
        options = self.options
        position = self.begin_attempt()
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
        except InvalidStatus as error:
            response = error.response
            return Ending(status=response.status_code, retry_after=retry_after(response.headers.get("Retry-After")))
        except (TimeoutError, OSError, InvalidHandshake) as error:
            return Ending(network=f"cannot connect: {self.secrets.peer_text(str(error))}")
        push = cast(PushConnection, connection)
        try:
            await self.read(push, position)
        finally:
            close_later(push)
        if self.restart_requested:
            return Ending(gap=True)
        return push.ending(self.resume.position is not None, self.secrets)

    async def send_request(self, connection: ClientConnection, position: int) -> None:
        request = self.options.request
        if position:
            request = {**(request or {}), "resume_from": position}
        if request is not None:
            await connection.send(orjson.dumps(request), text=True)

    async def read(self, connection: PushConnection, position: int) -> None:
        """Push frames downstream, from before the request is sent, until the connection has ended
        or the subscription does. Frames go straight to the observer: disposal and a restart
        request detach the connection when they happen, so nothing is checked per frame."""
        self.restart_requested = False
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def stop_reading() -> None:
            connection.detach()
            if not stop.done():
                stop.set_result(None)

        self.stop_reading = stop_reading
        watchdog = Watchdog(self, loop)
        try:
            connection.attach(self.observer, self.demand, stop, watchdog.progress)
            if not stop.done():
                try:
                    await self.send_request(connection, position)
                except ConnectionClosed:
                    pass  # the peer has gone: what it sent is still handed on, and the ending tells the rest
            await stop
        finally:
            self.stop_reading = None
            watchdog.cancel()
            connection.detach()


_closing: set[asyncio.Task[None]] = set()  # polite closes under way, kept from the garbage collector


def close_later(connection: PushConnection) -> None:
    """Close politely in the background (bounded by ``CLOSE_TIMEOUT``): an error is reported, or
    the next connection opened, without waiting for a peer that may never answer the close."""
    connection.detach()
    task = asyncio.get_running_loop().create_task(connection.close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


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
    deadline: float | None = None,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: Callable[[Retry], object] | None = None,
    rate_limit: float = 50.0,
    clock: Clock = SYSTEM_CLOCK,
) -> Observable[bytes]:
    """An Observable of the raw frames (UTF-8 bytes) of the stream at ``uri``.

    Sends ``Authorization: Bearer <token>`` (``token`` may be a callable, sync or async,
    called again for every connection), ``Accept: application/json-stream`` and
    ``headers``, then ``request`` as the first message; frames that arrive while it is
    being sent are kept. Frames above ``max_size`` end the stream at once
    (``FrameTooLargeError``); so does ``stream_timeout`` seconds without a frame while there
    is demand, pings and partial frames not counting, and, when given, ``deadline`` seconds
    from the start, retries included (``StreamTimeoutError``). Errors are reported at once;
    the closing handshake goes on in the background. A 408, 429 or 5xx at the handshake, a
    dropped connection (close codes 1001, 1005, 1006, 1011-1013, 1015, or none) or a stream
    cut short is retried on ``retry``'s schedule, re-authenticating, with ``"resume_from"``
    set in the request to the next index reorder needs; a server that ignores it replays,
    and reorder drops what was delivered already. Any other 4xx, and any other close code,
    fail at once. Each retry is logged on the ``rxstream`` logger (WARNING) and given to
    ``on_retry``. Connection attempts are spaced to at most ``rate_limit`` per second.
    Waits go through ``clock``.
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
        deadline=deadline,
        retry=retry,
        on_retry=on_retry,
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
