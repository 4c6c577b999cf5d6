"""The SSE source: OpenAI-compatible chat-completion streams, and OpenAI Responses streams, over HTTP, with
the WebSocket source's guarantees.

httpx is the HTTP client, as in the OpenAI SDK: async, HTTP/1.1 and HTTP/2, streaming
bodies that are read only when asked for, which is what lets demand reach the socket.
"""

from __future__ import annotations

import asyncio
import operator
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple
from urllib.parse import quote

import httpx
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ..core._demand import Source, batch_receiver, current_demand, current_resume, current_secrets, current_stats
from ..core._errors import BODY_LIMIT, FrameTooLargeError, StreamTimeoutError
from ..core._redaction import redact_http_logs
from ..protocol._decision import Ending, Retry, RetryPolicy
from ..protocol._sse import SSEDecoder, SSEEvent
from ._client import default_client, release, request_timeout, reusable
from ._clock import SYSTEM_CLOCK, Clock
from ._recovery import RateLimiter, Reconnector, SourceOptions, Timers, Token, checked_url, retry_after
from ._sources import until_ready

Replay = Literal["never", "deterministic"]
Api = Literal["chat", "responses"]


@dataclass(frozen=True, slots=True)
class _Options(SourceOptions):
    """from_sse's settings."""

    json: dict[str, Any] | None
    max_size: int
    replay: Replay
    client: httpx.AsyncClient | None


_data_of = operator.itemgetter(0)  # an SSEEvent's data: read in C, for the size check of a whole read

# Seconds to wait, after a finish reason, for the rest of the body (usage, [DONE]) before taking the answer as ended.
FINISH_GRACE = 0.5


class _Session(Reconnector[SSEEvent]):
    """An SSE subscription: one POST per try, events pushed while there is demand."""

    options: _Options

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.delivered = 0  # events pushed downstream, for a deterministic replay to skip
        self.last_event_id = ""  # of the last event pushed; empty (WHATWG's reset) when none
        self.accepted = False  # a try was answered 200: the server has started a response
        # How the events of one read go down: all at once to a stage that takes batches (parse_sse's),
        # else one on_next each (either answers True when demand or disposal must be seen to first);
        # None where a subclass changes what goes down (WebSocket mode's messages): one emit each.
        self.receive = batch_receiver(self.observer) if type(self).emit is Reconnector.emit else None

    async def stream(self) -> None:
        redact_http_logs(
            self.secrets
        )  # httpx logs the status line, httpcore the headers: the peer may echo the token there
        client = self.options.client or await default_client()
        while not self.disposed:
            ending = await self.attempt(client)
            if self.disposed or not await self.follow(ending):
                return

    def resumable(self) -> bool:
        return self.resume_headers() is not None

    def resume_headers(self) -> dict[str, str] | None:
        """How to ask for the rest: Last-Event-ID, a full replay to skip, or None when neither is safe.

        parse_sse numbers chunks by their position as the events come, so a server continuing
        after the last id pushed gives it exactly the positions it needs next, whatever the
        ids are.
        """
        if self.last_event_id:
            return {"Last-Event-ID": self.last_event_id}
        if self.delivered == 0 or self.options.replay == "deterministic":
            return {}
        return None

    def request(self) -> _Request:
        """The next try's request: the POST again, resuming after the last event id or replaying."""
        extra = self.resume_headers() or {}
        skip = self.delivered if not extra and self.delivered else 0
        return _Request("POST", self.uri, self.options.json, extra, skip)

    async def attempt(self, client: httpx.AsyncClient) -> Ending:
        """One request, from the POST (or resuming GET) to the end of its body: how it ended."""
        self.begin_attempt()
        self.restart_requested = False
        method, url, body, extra, skip = self.request()
        await self.options.limiter.acquire()
        headers = {**await self.request_headers("text/event-stream"), **extra}
        timers = Timers(self, asyncio.get_running_loop())  # from the request on: a server may never answer it
        try:
            timeout = request_timeout(self.options.client, self.options.stream_timeout)
            async with client.stream(method, url, json=body, headers=headers, timeout=timeout) as response:
                timers.alive()
                if response.status_code != 200:
                    timers.cancel()  # the body is read within stream_timeout, and its words reported
                    hint = retry_after(response.headers.get("Retry-After"))
                    return Ending(status=response.status_code, retry_after=hint, body=await self.body_of(response))
                content_type = response.headers.get("Content-Type")
                # A missing Content-Type is let through: some servers stream without one.
                if content_type is not None and not is_event_stream(content_type):
                    timers.cancel()
                    return Ending(content_type=content_type, body=await self.body_of(response))
                self.accepted = True
                await self.read(response, skip, timers)
        except httpx.TransportError as error:
            if self.accepted and self.answer_finished():
                return Ending(finished=True)  # only what may follow a finish reason (usage, [DONE]) was lost
            return Ending(network=f"{type(error).__name__}: {self.secrets.peer_text(str(error))}")
        finally:
            timers.cancel()
        if self.restart_requested:
            return Ending(gap=True)
        # Done without a reorder stage waiting, or when the parser takes the end of the body as
        # the end of the answer (a finish reason came, without [DONE]).
        return Ending(finished=self.resume.position is None or self.answer_finished())

    def answer_finished(self) -> bool:
        """Whether the parser takes the answer as ended by what came: its finish reason, not yet its end marker."""
        return self.resume.finished is not None and self.resume.finished()

    async def body_of(self, response: httpx.Response) -> str:
        """The first ``BODY_LIMIT`` bytes of a body that is not the stream (an error's), redacted;
        what came within ``stream_timeout`` if the server is slower."""
        data = bytearray()
        try:
            async with asyncio.timeout(self.options.stream_timeout):
                async for piece in response.aiter_bytes():
                    data += piece
                    if len(data) >= BODY_LIMIT:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass  # what came is what there is to show
        return self.secrets.redact(data[:BODY_LIMIT].decode("utf-8", "replace"))

    async def read(self, response: httpx.Response, skip: int, timers: Timers) -> None:
        decoder = SSEDecoder()
        demand = self.demand
        body = response.aiter_bytes()
        finished = self.resume.finished
        while True:
            try:
                if finished is not None and finished():
                    # The answer's finish reason came, its end marker not yet: what may follow comes at
                    # once (include_usage's chunk, [DONE]); a server holding the connection open has no more.
                    data = await asyncio.wait_for(anext(body), FINISH_GRACE)
                else:
                    data = await anext(body)
            except (StopAsyncIteration, TimeoutError):
                break
            timers.alive()  # any bytes, a keep-alive comment too, prove the connection alive
            skip = self.received(decoder.feed(data), decoder.pending, timers, skip)
            if self.disposed and not self.restart_requested and reusable(response):
                await release(body)  # done with it: the connection may serve the next call
            if self.disposed or self.restart_requested:
                return
            if demand is not None and not demand.ready:
                await until_ready(demand)  # a full buffer below: the body is not read, TCP pushes back
                timers.consumer_ready()

    def received(self, events: list[SSEEvent], pending: int, timers: Timers, skip: int) -> int:
        """Act on the events a read completed, ``pending`` bytes of the next held: push them but the first
        ``skip``; the skips left. Not inline in ``read``, so that the list is gone before the next read is
        awaited: 200 streams holding their last read's events kept 50,000 of them for the garbage collector."""
        if any(event.event != "ping" for event in events):
            timers.content_came()  # an event, not Anthropic's ping: the answer is under way
        if pending > self.options.max_size:
            raise FrameTooLargeError(self.endpoint, self.options.max_size)
        return self.push(events, skip)

    def push(self, events: list[SSEEvent], skip: int) -> int:
        """Push ``events`` downstream but the first ``skip`` (replayed: delivered on an earlier try); the skips left."""
        receive = self.receive
        if receive is None or skip or max(map(len, map(_data_of, events)), default=0) > self.options.max_size:
            return self.push_each(events, skip)
        if self.disposed:
            return 0
        items = iter(events)
        self.emitting = True  # as in emit: a dispose from below must not cancel the task mid-push
        try:
            while receive(items) and not (self.disposed or self.restart_requested):
                pass
        finally:
            self.emitting = False
            pushed = len(events) - operator.length_hint(items)
            if pushed:
                self.delivered += pushed
                self.last_event_id = events[pushed - 1].id or ""
        return 0

    def push_each(self, events: list[SSEEvent], skip: int) -> int:
        """``push`` one event at a time, through ``emit``: for a replay's skips, to fail at an event above
        ``max_size`` after pushing those before it, and for a subclass's own ``emit``."""
        for event in events:
            if len(event.data) > self.options.max_size:
                raise FrameTooLargeError(self.endpoint, self.options.max_size)
            self.last_event_id = event.id or ""
            if skip:
                skip -= 1
                continue
            self.delivered += 1
            self.emit(event)
            if self.disposed or self.restart_requested:
                return 0
        return skip

    def request_restart(self, index: int) -> bool:
        # A chat server resumes after an event id, never from a chunk index: a gap reorder cannot
        # close (a parser other than parse_sse, which numbers by position) is its 40002 error.
        return False


class _ResponsesSession(_Session):
    """An OpenAI Responses subscription: the POST creates the response, and only a background
    response is resumed, by GET ``{url}/{id}?stream=true&starting_after=<last sequence number>``.

    parse_responses numbers chunks by sequence number, so reorder's position, less one, is the
    last event delivered in order; it puts the id on the stats.
    """

    creation = "POST"  # what asking again would send, for the errors

    stalled: StreamTimeoutError | None = None  # the watchdog's, while it ends this try (not the stream)

    def time_out(self, error: StreamTimeoutError) -> None:
        # A background response that went silent is resumed like one that dropped: the server
        # keeps it, and asking again costs nothing new. The deadline, and a stall of a response
        # that cannot be resumed, end the stream.
        if error.kind != "idle" or not self.accepted or not self.resumable() or self.task is None:
            super().time_out(error)
            return
        self.stalled = error
        self.task.cancel()

    async def attempt(self, client: httpx.AsyncClient) -> Ending:
        return await self.unless_stalled(super().attempt(client))

    async def unless_stalled(self, attempt: Awaitable[Ending]) -> Ending:
        """How ``attempt`` ended; a stall ``time_out`` cancelled it for is an ``Ending`` too."""
        try:
            return await attempt
        except asyncio.CancelledError:
            stalled, self.stalled = self.stalled, None
            if stalled is None or self.disposed or self.timed_out is not None or self.task is None:
                raise
            self.task.uncancel()  # only this try was cancelled: its body or socket is closed, the stream goes on
            return Ending(stalled=stalled.timeout)

    def resumable(self) -> bool:
        # Before any 200 no response exists, so the POST may be sent again (a 429, a 5xx, no connection).
        return not self.accepted or (self.background and self.stats.response_id is not None)

    @property
    def background(self) -> bool:
        return self.options.json is not None and self.options.json.get("background") is True

    def request_restart(self, index: int) -> bool:
        # A gap beyond reorder's window: the events from ``index`` on, once more, by sequence
        # number, as after a drop. The rest of this body is not read.
        return Reconnector.request_restart(self, index)

    def why_not_resumable(self) -> str:
        if not self.background:
            return (
                'the response was not created with "background": true, so the server cannot resume it, and a new '
                f'{self.creation} would start a new (paid) response: send "background": true to make it resumable'
            )
        return (
            "no response id came before the drop, so there is nothing to resume, "
            f"and a new {self.creation} would start a new (paid) response"
        )

    def request(self) -> _Request:
        if not self.accepted:
            return _Request("POST", self.uri, self.options.json, {}, 0)
        after = self.position() - 1
        # GET {url}/{id}, the id one path segment (it is peer text), the URL's own query (Azure's
        # ?api-version=) kept, stream and starting_after added
        url = httpx.URL(self.uri)
        path = (
            url.raw_path.partition(b"?")[0].rstrip(b"/") + b"/" + quote(self.stats.response_id or "", safe="").encode()
        )
        resume = {"stream": "true", **({"starting_after": str(after)} if after >= 0 else {})}
        return _Request(
            "GET", str(url.copy_with(raw_path=path).copy_with(params=url.params.merge(resume))), None, {}, 0
        )


def is_event_stream(content_type: str) -> bool:
    """Whether a Content-Type header names an event stream (``text/event-stream; charset=utf-8`` too)."""
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


class _Request(NamedTuple):
    method: str
    url: str
    json: dict[str, Any] | None
    headers: dict[str, str]
    skip: int  # events to skip: a replay's, delivered on an earlier try


def from_sse(
    url: str,
    *,
    request: Mapping[str, Any] | None = None,
    token: Token = None,
    headers: Mapping[str, str] | None = None,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: Callable[[Retry], object] | None = None,
    stream_timeout: float = 30.0,
    content_timeout: float | None = 600.0,
    deadline: float | None = None,
    max_size: int = 2**24,
    replay: Replay = "never",
    rate_limit: float = 50.0,
    clock: Clock = SYSTEM_CLOCK,
    client: httpx.AsyncClient | None = None,
    api: Api = "chat",
    json: Mapping[str, Any] | None = None,
) -> Observable[SSEEvent]:
    """An Observable of the Server-Sent Events of a POST to ``url`` (``request`` as the JSON body;
    ``json`` is its former name, deprecated).

    Sends ``Authorization: Bearer <token>`` (a callable is called again for every try) and
    ``Accept: text/event-stream``. Reads the body only while the pipeline has demand.
    Three timers end it with ``StreamTimeoutError`` while there is demand: ``stream_timeout``
    seconds without any bytes (keep-alive comments count: the connection is alive; ``kind``
    ``"idle"``), ``content_timeout`` seconds without an event (keep-alives alone do not hold a
    request forever; ``"content"``, saying "queued" when none came; None: no bound), and
    ``deadline`` seconds from the start when given (``"deadline"``). An event above ``max_size``
    bytes ends it (``FrameTooLargeError``). A URL that is not ``http(s)://host…`` is an
    ``InvalidEndpointError`` at once. A 200 that is not ``text/event-stream`` (a JSON error, a
    proxy's HTML page) is an ``UnexpectedContentTypeError``, never retried. A refusal's body
    (its first 64 KiB, redacted) is read into the ``APIStatusError`` (``AuthenticationError``,
    ``RateLimitedError``): the server's message, type and code. Retries on ``retry``'s
    schedule, as the WebSocket source decides (the same ``decide``): a 408 or 429 (waiting at
    least ``Retry-After`` when given, at most the policy's cap), a 5xx (529 too), a dropped
    connection, or a body that ends before the final chunk (one that ends right after the
    finish reason is final, or breaks there: parse_sse says so through ``Resume.finished``); any other 4xx fails
    at once. An error the server reports inside the stream is the parser's
    ``ResponseFailedError`` and ends the stream: it is never retried. Each
    retry is logged on the ``rxstream`` logger and given to ``on_retry``. A retry resumes
    with ``Last-Event-ID``, the id of the last event received, when the events carry ids.
    Without ids (or after an empty ``id:``, which resets it), a retry after events were
    delivered replays the request and skips what was delivered only if ``replay`` is
    ``"deterministic"`` (the server sends the same events again, e.g. a seeded or cached
    completion); otherwise it makes no new (paid) request, and the stream ends with what it
    has: ``finalize`` raises the ``ConnectionLostError`` with the partial response on it.
    The requests go through ``client`` when given (with its own timeouts), else through the
    running loop's shared client (connections kept alive for the next call, closed when the
    loop shuts down, never used by another loop), which connects within ``stream_timeout``.

    ``api="responses"`` is the OpenAI Responses API (``POST /v1/responses``, read with
    ``parse_responses``): once the POST is answered, a retry never POSTs again. A response
    created with ``"background": true`` is resumed with ``GET <url>/<id>?stream=true&starting_after=<n>``,
    ``n`` the sequence number of the last event delivered in order, so each event comes once, and so
    is one whose events leave a gap reorder cannot close (one missing while ``window`` later ones
    came), and one silent for ``stream_timeout`` seconds (``StreamTimeoutError`` once the retries are
    spent); any other drop is a ``ConnectionLostError`` saying so (``replay`` does not apply), any
    other such gap an ``InvalidChunkError``, any other stall a ``StreamTimeoutError``.
    """
    checked_url(url, websocket=False)
    options = _Options(
        token=token,
        headers=dict(headers) if headers else None,
        stream_timeout=stream_timeout,
        content_timeout=content_timeout,
        deadline=deadline,
        retry=retry,
        on_retry=on_retry,
        clock=clock,
        limiter=RateLimiter(rate_limit, clock),
        json=body_of(request, json),
        max_size=max_size,
        replay=replay,
        client=client,
    )

    def subscribe(
        observer: abc.ObserverBase[SSEEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        reconnector = (_ResponsesSession if api == "responses" else _Session)(
            observer, url, options, current_demand(), current_stats(), current_resume(), current_secrets()
        )
        reconnector.start(asyncio.get_running_loop())
        return Disposable(reconnector.dispose)

    return Source(subscribe)


def body_of(request: Mapping[str, Any] | None, json: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The request body: ``request``, or ``json``, its name on the SSE sources before 0.2, with a warning."""
    if json is not None:
        if request is not None:
            raise TypeError("give the request body once, as request=")
        warnings.warn("json= is deprecated: the request body is request= on every source", DeprecationWarning, 3)
        request = json
    return dict(request) if request is not None else None
