"""The WebSocket source: frames of the chunk protocol from a live endpoint, with recovery.

The source hands frames downstream only while the demand below is ready, so a full
``backpressure_buffer`` stops it reading the socket: the connection pauses its transport,
TCP's window closes and the peer's sends block.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import httpx
import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

from ..core._demand import (
    Source,
    current_demand,
    current_resume,
    current_secrets,
    current_stats,
)
from ..core._errors import BODY_LIMIT
from ..core._redaction import RedactingLogger
from ..protocol._decision import Ending, Retry, RetryPolicy
from ..protocol._sse import SSEEvent
from ._clock import SYSTEM_CLOCK, Clock
from ._proxy import environment_proxy
from ._push_connection import CLOSE_TIMEOUT, PushConnection, close_later
from ._recovery import RateLimiter, Reconnector, SourceOptions, Timers, Token, checked_url, retry_after
from ._sse import Api
from ._sse import _Options as SSEOptions
from ._sse import _ResponsesSession as ResponsesOverSSE


class WebSocketAttempts(Reconnector[Any]):
    """What a subscription needs to stream over one WebSocket connection: the handshake, the
    request message, frames pushed while there is demand, and how the connection ended.
    Subclasses say what to send (``send_request``) and how to go on (``stream``)."""

    stop_reading: Callable[[], None] | None = None  # while reading: detach from the connection and end the read

    def interrupt(self) -> None:
        if self.stop_reading is not None:
            self.stop_reading()  # the loop sees ``disposed`` and closes politely
        else:
            super().interrupt()

    async def send_request(self, connection: ClientConnection, position: int) -> None:
        raise NotImplementedError

    async def attempt_websocket(self, uri: str, max_size: int, proxy: str | Literal[True] | None) -> Ending:
        """One connection to ``uri``, from the handshake to its end: how it ended."""
        options = self.options
        position = self.begin_attempt()
        await options.limiter.acquire()
        headers = await self.request_headers("application/json-stream")
        try:
            connection = await connect(
                uri,
                create_connection=PushConnection,
                additional_headers=headers,
                max_size=max_size,
                compression=None,  # permessage-deflate halves throughput
                # No keepalive pings: while demand pauses the transport no pong could be read, so
                # a slow consumer would look like a dead peer; the Watchdog ends a silent stream.
                ping_interval=None,
                close_timeout=CLOSE_TIMEOUT,
                proxy=environment_proxy() if proxy is True else proxy,
                open_timeout=options.stream_timeout,
                # websockets logs the request's headers at debug, and the peer's headers and close reason
                logger=RedactingLogger(logging.getLogger("websockets.client"), self.secrets),
            )
        except InvalidStatus as error:
            response = error.response
            return Ending(
                status=response.status_code,
                retry_after=retry_after(response.headers.get("Retry-After")),
                body=self.secrets.redact(response.body[:BODY_LIMIT].decode("utf-8", "replace")),
            )
        except (TimeoutError, OSError, InvalidHandshake) as error:
            return Ending(network=f"cannot connect: {self.secrets.peer_text(str(error))}")
        push = cast(PushConnection, connection)
        try:
            await self.read_websocket(push, position)
        finally:
            close_later(push)
        if self.restart_requested:
            return Ending(gap=True)
        return push.ending(self.resume.position is not None, self.secrets)

    async def read_websocket(self, connection: PushConnection, position: int) -> None:
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
        timers = Timers(self, loop)
        try:
            connection.attach(self.observer, self.demand, stop, timers)
            if not stop.done():
                try:
                    await self.send_request(connection, position)
                except ConnectionClosed:
                    pass  # the peer has gone: what it sent is still handed on, and the ending tells the rest
            await stop
        finally:
            self.stop_reading = None
            timers.cancel()
            connection.detach()


class _Session(WebSocketAttempts):
    """A WebSocket subscription of the chunk protocol: reconnects on failure, resuming from the
    next index reorder needs."""

    options: WebSocketOptions

    def request_restart(self, index: int) -> bool:
        if not super().request_restart(index):
            return False
        if self.stop_reading is not None:
            self.stop_reading()
        return True

    async def stream(self) -> None:
        while not self.disposed:
            ending = await self.attempt_websocket(self.uri, self.options.max_size, self.options.proxy)
            if self.disposed or not await self.follow(ending):
                return

    async def send_request(self, connection: ClientConnection, position: int) -> None:
        request = self.options.request
        if position:
            request = {**(request or {}), "resume_from": position}
        if request is not None:
            await connection.send(orjson.dumps(request), text=True)


class _ResponsesSession(WebSocketAttempts, ResponsesOverSSE):
    """An OpenAI Responses subscription in WebSocket mode: ``response.create`` is the request
    message and each message one event. Until it has gone out no response exists, so a refused
    handshake or a lost connection is tried again; after it, only the SSE session's resumption
    of a background response (``GET <http url>/<id>?stream=true&starting_after=<n>``) is, and
    never a second ``response.create``."""

    options: _ResponsesOptions
    creation = "response.create"

    async def stream(self) -> None:
        while not self.accepted:
            ending = await self.unless_stalled(
                self.attempt_websocket(self.uri, self.options.max_size, self.options.proxy)
            )
            self.accepted = self.accepted or self.progressed()  # a peer may stream before reading the request
            if self.disposed or not await self.follow(ending):
                return
        self.uri = http_url_of(self.uri)
        await super().stream()

    async def send_request(self, connection: ClientConnection, position: int) -> None:
        if connection.protocol.state is not State.OPEN:
            return  # the peer has gone before the request: asking again starts nothing twice
        self.accepted = True  # from the first byte sent the response may exist
        body = {name: value for name, value in (self.options.json or {}).items() if name != "stream"}
        await connection.send(orjson.dumps({"type": "response.create", **body}), text=True)

    def emit(self, item: SSEEvent) -> None:
        """A resumed event goes on as its JSON, as a WebSocket message would have brought it."""
        Reconnector.emit(self, item.data.encode())


def http_url_of(uri: str) -> str:
    """The HTTP URL of the same endpoint as a WebSocket URI: ``ws://`` -> ``http://``, ``wss://`` -> ``https://``."""
    return uri.replace("ws", "http", 1)


@dataclass(frozen=True, slots=True)
class WebSocketOptions(SourceOptions):
    """from_websocket's settings."""

    request: dict[str, Any] | None
    max_size: int
    proxy: str | Literal[True] | None


@dataclass(frozen=True, slots=True)
class _ResponsesOptions(SSEOptions):
    """from_websocket's settings for ``api="responses"``: the SSE session's (``json`` is the request), and the proxy."""

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
    content_timeout: float | None = 600.0,
    deadline: float | None = None,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: Callable[[Retry], object] | None = None,
    rate_limit: float = 50.0,
    clock: Clock = SYSTEM_CLOCK,
    api: Api = "chat",
    client: httpx.AsyncClient | None = None,
) -> Observable[bytes]:
    """An Observable of the raw frames (UTF-8 bytes) of the stream at ``uri``.

    Sends ``Authorization: Bearer <token>`` (``token`` may be a callable, sync or async,
    called again for every connection), ``Accept: application/json-stream`` and
    ``headers``, then ``request`` as the first message; frames that arrive while it is
    being sent are kept. Frames above ``max_size`` end the stream at once
    (``FrameTooLargeError``); so do, while there is demand, ``stream_timeout`` seconds without
    any bytes (a ping counts: the connection is alive), ``content_timeout`` seconds without a
    message (pings do not count; None: no bound) and, when given, ``deadline`` seconds from the
    start, retries included (``StreamTimeoutError``, its ``kind`` saying which). A URI that is
    not ``ws(s)://host…`` is an ``InvalidEndpointError`` at once, with a hint for an
    ``http(s)://`` one (the SSE and Responses sources take those). Errors are reported at once;
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

    ``api="responses"`` is the OpenAI Responses API in WebSocket mode (``wss://…/v1/responses``,
    read with ``parse_responses``): ``request`` holds the fields of ``POST /v1/responses``, such as
    ``responses_request``'s, sent as ``{"type": "response.create", …}`` (without ``stream``, which
    is implicit), and each message is one event. Once it is sent it is never sent again: after a
    drop, a response created with ``"background": true`` whose id came is resumed over SSE with
    ``GET http(s)://…/v1/responses/<id>?stream=true&starting_after=<n>``, ``n`` the sequence number
    of the last event delivered in order, so each event comes once (those events come on as
    their JSON bytes too); any other drop is a ``ConnectionLostError`` saying so. That GET goes
    through ``client`` when given, as ``from_sse``'s requests do, else the loop's shared client.
    """
    checked_url(uri, websocket=True)
    settings: dict[str, Any] = {
        "token": token,
        "headers": dict(headers) if headers else None,
        "max_size": max_size,
        "proxy": proxy,
        "stream_timeout": stream_timeout,
        "content_timeout": content_timeout,
        "deadline": deadline,
        "retry": retry,
        "on_retry": on_retry,
        "clock": clock,
        "limiter": RateLimiter(rate_limit, clock),
    }
    body = dict(request) if request is not None else None
    options: SourceOptions
    session: type[WebSocketAttempts]
    if api == "responses":
        options, session = _ResponsesOptions(json=body, replay="never", client=client, **settings), _ResponsesSession
    else:
        options, session = WebSocketOptions(request=body, **settings), _Session

    def subscribe(observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        reconnector = session(
            observer, uri, options, current_demand(), current_stats(), current_resume(), current_secrets()
        )
        reconnector.start(asyncio.get_running_loop())
        return Disposable(reconnector.dispose)

    return Source(subscribe)
