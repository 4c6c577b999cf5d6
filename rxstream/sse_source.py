"""The SSE source: OpenAI-compatible chat-completion streams over HTTP, with the WebSocket source's guarantees.

httpx is the HTTP client, as in the OpenAI SDK: async, HTTP/1.1 and HTTP/2, streaming
bodies that are read only when asked for, which is what lets demand reach the socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from . import operators as rxo
from .errors import AuthenticationError, ConnectionLostError, FrameTooLargeError, RateLimitedError, TransportError
from .flow import Source, current_demand, current_resume, current_secrets, current_stats
from .model import Response
from .operators.finalize import Clock as StatsClock
from .operators.persist import run_to_response
from .recovery import RateLimiter, Restart, Session, SourceOptions, Token, Watchdog, retry_after
from .redaction import redact_http_logs
from .retry import SYSTEM_CLOCK, Clock, RetryPolicy
from .sse import SSEDecoder, SSEEvent
from .stage import Operator, fuse
from .store import ContextStore

Replay = Literal["never", "deterministic"]


@dataclass(frozen=True, slots=True)
class _Options(SourceOptions):
    """from_sse's settings."""

    json: dict[str, Any] | None
    max_size: int
    replay: Replay
    client: httpx.AsyncClient | None


class _Session(Session[SSEEvent]):
    """An SSE subscription: one POST per try, events pushed while there is demand."""

    options: _Options

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.delivered = 0  # events pushed downstream, for a deterministic replay to skip
        self.last_event_id: str | None = None
        self.numeric_ids = False

    async def stream(self) -> None:
        redact_http_logs(self.secrets)  # httpx logs the status line, httpcore the headers: the peer may echo the token there
        client = self.options.client or httpx.AsyncClient(timeout=httpx.Timeout(self.options.stream_timeout, read=None))
        try:
            while not self.disposed:
                position = self.position()
                ended = await self.attempt(client, position)
                if ended is None or self.disposed:
                    return
                detail, delay = ended
                if self.resume_headers() is None:
                    raise ConnectionLostError(
                        self.endpoint,
                        f"{detail}; the events carry no id to resume from and replay is not 'deterministic'",
                        self.failures + 1,
                    )
                progressed = self.resume.position is not None and self.resume.position() > position
                await self.back_off(detail, progressed, delay)
        finally:
            if self.options.client is None:
                await client.aclose()

    def resume_headers(self) -> dict[str, str] | None:
        """How to ask for the rest: Last-Event-ID, a full replay to skip, or None when neither is safe."""
        if self.numeric_ids and self.resume.position is not None:
            return {"Last-Event-ID": str(self.resume.position() - 1)} if self.resume.position() else {}
        if self.last_event_id is not None:
            return {"Last-Event-ID": self.last_event_id}
        if self.delivered == 0 or self.options.replay == "deterministic":
            return {}
        return None

    async def attempt(self, client: httpx.AsyncClient, position: int) -> tuple[str, float | None] | None:
        """One request: why it ended early and how long to wait (None: the policy's), or None when done."""
        extra = self.resume_headers() or {}
        await self.options.limiter.acquire()
        headers = {**await self.request_headers("text/event-stream"), **extra}
        skip = self.delivered if not extra and self.delivered else 0
        try:
            async with client.stream("POST", self.uri, json=self.options.json, headers=headers) as response:
                status = response.status_code
                if status in (401, 403):
                    raise AuthenticationError(self.endpoint, f"HTTP {status}")
                if status == 429:
                    hint = retry_after(response.headers.get("Retry-After"))
                    if self.failures >= len(self.delays):
                        raise RateLimitedError(self.endpoint, self.failures + 1, hint)
                    return "429 Too Many Requests", hint
                if status >= 500:
                    return f"HTTP {status}", None
                if status != 200:
                    raise TransportError(f"{self.endpoint} answered HTTP {status}; check the URL and the request body.")
                await self.read(response, skip)
        except Restart:
            return "a gap in the chunk indices (40002 Invalid Chunk): requesting the stream again", None
        except httpx.TransportError as error:
            return f"connection lost ({type(error).__name__}: {self.secrets.peer_text(str(error))})", None
        if self.disposed or self.resume.position is None:
            return None
        return "the body ended before the final chunk", None

    async def read(self, response: httpx.Response, skip: int) -> None:
        self.restart_requested = False
        decoder = SSEDecoder()
        demand = self.demand
        watchdog = Watchdog(self, asyncio.get_running_loop(), lambda: self.reads)
        try:
            async for data in response.aiter_bytes():
                self.reads += 1
                events = decoder.feed(data)
                if decoder.pending > self.options.max_size:
                    raise FrameTooLargeError(self.endpoint, self.options.max_size)
                for event in events:
                    if len(event.data) > self.options.max_size:
                        raise FrameTooLargeError(self.endpoint, self.options.max_size)
                    if event.id is not None:
                        self.last_event_id = event.id
                        self.numeric_ids = event.id.isdigit()
                    if skip:
                        skip -= 1  # replayed: delivered on an earlier try
                        continue
                    self.delivered += 1
                    self.emit(event)
                    if self.disposed:
                        return
                    if self.restart_requested:
                        raise Restart
                if demand is not None and not demand.ready:
                    await demand.wait()  # a full buffer below: the body is not read, TCP pushes back
        finally:
            watchdog.cancel()


def from_sse(
    url: str,
    *,
    token: Token = None,
    json: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    retry: RetryPolicy = RetryPolicy(),
    stream_timeout: float = 30.0,
    max_size: int = 2**24,
    replay: Replay = "never",
    rate_limit: float = 50.0,
    clock: Clock = SYSTEM_CLOCK,
    client: httpx.AsyncClient | None = None,
) -> Observable[SSEEvent]:
    """An Observable of the Server-Sent Events of a POST to ``url`` (``json`` as the body).

    Sends ``Authorization: Bearer <token>`` (a callable is called again for every try) and
    ``Accept: text/event-stream``. Reads the body only while the pipeline has demand.
    ``stream_timeout`` seconds of silence end it (``StreamTimeoutError``); an event above
    ``max_size`` bytes ends it (``FrameTooLargeError``). Retries on ``retry``'s schedule: a
    429 (waiting ``Retry-After`` when given), a 5xx, a dropped connection, a body that ends
    before the final chunk, or a gap reorder cannot close. A retry resumes with
    ``Last-Event-ID`` when the events carry ids. Without ids, a retry after events were
    delivered replays the request and skips what was delivered only if ``replay`` is
    ``"deterministic"`` (the server sends the same events again, e.g. a seeded or cached
    completion); otherwise it does not guess, and the stream ends with what it has, which
    ``finalize`` turns into ``IncompleteStreamError`` with the partial response.
    """
    options = _Options(
        token=token,
        headers=dict(headers) if headers else None,
        stream_timeout=stream_timeout,
        retry=retry,
        clock=clock,
        limiter=RateLimiter(rate_limit, clock),
        json=dict(json) if json is not None else None,
        max_size=max_size,
        replay=replay,
        client=client,
    )

    def subscribe(observer: abc.ObserverBase[SSEEvent], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        session = _Session(observer, url, options, current_demand(), current_stats(), current_resume(), current_secrets())
        session.start(asyncio.get_running_loop())
        return Disposable(session.dispose)

    return Source(subscribe)


def sse_pipeline(
    window: int = 64,
    max_pending: int = 5,
    choice: int = 0,
    clock: StatsClock = time.perf_counter,
) -> Operator[SSEEvent, Response]:
    """parse_sse → reorder → backpressure_buffer → accumulate → finalize, fused: SSE events in, one Response out."""
    return fuse(
        rxo.parse_sse(choice),
        rxo.reorder(window),
        rxo.backpressure_buffer(max_pending),
        rxo.accumulate(),
        rxo.finalize(clock),
    )


async def stream_sse(url: str, *, store: ContextStore | None = None, session_id: str | None = None, choice: int = 0, **options: Any) -> Response:
    """The whole response of an OpenAI-compatible streaming endpoint (``from_sse``'s options)."""
    return await run_to_response(from_sse(url, **options), sse_pipeline(choice=choice), store, session_id)


def chat_request(model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    """The body of a streamed chat completion: one user message, usage included in the stream."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }
