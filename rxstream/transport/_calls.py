"""The one-call entry points: a whole ``Response`` (``stream``, ``stream_sse``, ``stream_responses``), or
its deltas and text as they arrive (``stream_deltas``, ``stream_text``), over the transport the URL names.

Every parameter is spelt out, so that an editor completes them, ``help()`` lists them with their
defaults, and a misspelt one is a type error. The request body is ``request=`` everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import httpx
from reactivex import Observable, abc

from .. import operators as rxo
from ..core._context_store import ContextStore
from ..core._stage import Operator, Shared, fuse
from ..core._values import Chunk, Response
from ..operators._accumulate import Delta
from ..operators._finalize import FinalizeStage
from ..operators._pipeline import pipeline, responses_pipeline, sse_pipeline
from ..protocol._decision import Retry, RetryPolicy
from ._clock import SYSTEM_CLOCK, Clock
from ._recovery import Token
from ._sources import AsyncStream, run_to_response
from ._sse import Api, Replay, body_of, from_sse
from ._websocket import from_websocket

Proxy = str | Literal[True] | None
OnRetry = Callable[[Retry], object] | None
_T = TypeVar("_T")


async def stream(
    uri: str,
    *,
    request: Mapping[str, Any] | None = None,
    token: Token = None,
    headers: Mapping[str, str] | None = None,
    stream_timeout: float = 30.0,
    content_timeout: float | None = 600.0,
    deadline: float | None = None,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: OnRetry = None,
    rate_limit: float = 50.0,
    max_size: int = 2**24,
    proxy: Proxy = True,
    clock: Clock = SYSTEM_CLOCK,
    store: ContextStore | None = None,
    session_id: str | None = None,
) -> Response:
    """The whole response of the chunk protocol at ``uri`` (``ws://`` or ``wss://``) through ``pipeline()``.

    The options are ``from_websocket``'s. With ``store`` and ``session_id`` the turn is saved there
    (the partial one too, when the stream fails) before this returns or raises.
    """
    source = from_websocket(
        uri,
        request=request,
        token=token,
        headers=headers,
        stream_timeout=stream_timeout,
        content_timeout=content_timeout,
        deadline=deadline,
        retry=retry,
        on_retry=on_retry,
        rate_limit=rate_limit,
        max_size=max_size,
        proxy=proxy,
        clock=clock,
    )
    return await run_to_response(source, pipeline(), store, session_id, request)


async def stream_sse(
    url: str,
    *,
    request: Mapping[str, Any] | None = None,
    token: Token = None,
    headers: Mapping[str, str] | None = None,
    stream_timeout: float = 30.0,
    content_timeout: float | None = 600.0,
    deadline: float | None = None,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: OnRetry = None,
    rate_limit: float = 50.0,
    max_size: int = 2**24,
    replay: Replay = "never",
    client: httpx.AsyncClient | None = None,
    clock: Clock = SYSTEM_CLOCK,
    choice: int = 0,
    store: ContextStore | None = None,
    session_id: str | None = None,
    json: Mapping[str, Any] | None = None,
) -> Response:
    """The whole response of an OpenAI-compatible chat completion at ``url`` through ``sse_pipeline(choice)``.

    ``request`` is the body (``chat_request``'s, say); ``json`` is its former name, deprecated. The
    options are ``from_sse``'s; ``store`` and ``session_id`` as for ``stream``.
    """
    body = body_of(request, json)
    source = from_sse(
        url,
        request=body,
        token=token,
        headers=headers,
        stream_timeout=stream_timeout,
        content_timeout=content_timeout,
        deadline=deadline,
        retry=retry,
        on_retry=on_retry,
        rate_limit=rate_limit,
        max_size=max_size,
        replay=replay,
        client=client,
        clock=clock,
    )
    return await run_to_response(source, sse_pipeline(choice=choice), store, session_id, body)


async def stream_responses(
    url: str,
    *,
    request: Mapping[str, Any] | None = None,
    token: Token = None,
    headers: Mapping[str, str] | None = None,
    stream_timeout: float = 30.0,
    content_timeout: float | None = 600.0,
    deadline: float | None = None,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: OnRetry = None,
    rate_limit: float = 50.0,
    max_size: int = 2**24,
    proxy: Proxy = True,
    client: httpx.AsyncClient | None = None,
    clock: Clock = SYSTEM_CLOCK,
    store: ContextStore | None = None,
    session_id: str | None = None,
    json: Mapping[str, Any] | None = None,
) -> Response:
    """The whole response of an OpenAI Responses endpoint through ``responses_pipeline()``.

    ``request`` holds the fields of ``POST /v1/responses`` (``responses_request``'s, say); ``json``
    is its former name, deprecated. An ``http(s)://`` URL is read over SSE (``from_sse``'s options),
    a ``ws(s)://`` one in WebSocket mode (``from_websocket``'s; ``proxy`` applies, and ``client``
    makes the resuming GET of a background response). ``store`` and ``session_id`` as for ``stream``.
    """
    body = body_of(request, json)
    source = _source(
        url,
        "responses",
        request=body,
        token=token,
        headers=headers,
        stream_timeout=stream_timeout,
        content_timeout=content_timeout,
        deadline=deadline,
        retry=retry,
        on_retry=on_retry,
        rate_limit=rate_limit,
        max_size=max_size,
        proxy=proxy,
        replay="never",
        client=client,
        clock=clock,
    )
    return await run_to_response(source, responses_pipeline(), store, session_id, body)


class ResponseStream(AsyncStream[_T]):
    """``async for`` over a response as it arrives (``stream_deltas``' ``Delta``s, ``stream_text``'s
    text); ``async with`` closes the connection when the block is left, however early.

    ``stats`` fills in as it runs; ``response`` is the whole ``Response`` once the final chunk came
    (None before). A stream that ends without it raises what ``finalize`` raises, with the partial
    response on the error.
    """

    __slots__ = ("_finished",)

    def __init__(self, source: Observable[_T], finished: list[Response]) -> None:
        super().__init__(source)
        self._finished = finished

    @property
    def response(self) -> Response | None:
        """The whole response, once its final chunk arrived."""
        return self._finished[0] if self._finished else None


class _PassThenFinalize(FinalizeStage):
    """``finalize``, passing on each delta (or its text) before taking it: its ``Response`` is kept
    aside for ``ResponseStream.response``, and its error (with the partial response) ends the stream."""

    def __init__(
        self, downstream: abc.ObserverBase[Any], shared: Shared, finished: list[Response], text_only: bool
    ) -> None:
        super().__init__(downstream, shared, time.perf_counter)
        self.deliver = downstream.on_next
        self.text_only = text_only
        self.finished = finished
        self.emit = self.keep

    def keep(self, value: Response) -> None:
        self.finished.append(value)

    def on_next(self, delta: Delta) -> None:
        if not self.stopped:
            if not self.text_only:
                self.deliver(delta)
            elif delta.text:  # a chunk that adds no text (a role, a tool call, usage) is not a piece of it
                self.deliver(delta.text)
        super().on_next(delta)


def stream_deltas(
    url: str,
    *,
    api: Api = "chat",
    request: Mapping[str, Any] | None = None,
    token: Token = None,
    headers: Mapping[str, str] | None = None,
    stream_timeout: float = 30.0,
    content_timeout: float | None = 600.0,
    deadline: float | None = None,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: OnRetry = None,
    rate_limit: float = 50.0,
    max_size: int = 2**24,
    proxy: Proxy = True,
    replay: Replay = "never",
    client: httpx.AsyncClient | None = None,
    clock: Clock = SYSTEM_CLOCK,
    choice: int = 0,
) -> ResponseStream[Delta]:
    """Each ``Delta`` of the response at ``url`` as it arrives, for ``async for`` (inside ``async with``).

    ``api="chat"``: the chunk protocol over ``ws(s)://``, an OpenAI-compatible chat completion
    (``choice``) over ``http(s)://``; ``api="responses"``: the OpenAI Responses API over either. The
    options are ``from_websocket``'s or ``from_sse``'s (``proxy`` applies to WebSocket, ``replay``
    to SSE, ``client`` to HTTP requests).
    """
    source = _source(
        url,
        api,
        request=request,
        token=token,
        headers=headers,
        stream_timeout=stream_timeout,
        content_timeout=content_timeout,
        deadline=deadline,
        retry=retry,
        on_retry=on_retry,
        rate_limit=rate_limit,
        max_size=max_size,
        proxy=proxy,
        replay=replay,
        client=client,
        clock=clock,
    )
    deltas: ResponseStream[Delta] = response_stream(source, parser_for(url, api, choice), text_only=False)
    return deltas


def stream_text(
    url: str,
    *,
    api: Api = "chat",
    request: Mapping[str, Any] | None = None,
    token: Token = None,
    headers: Mapping[str, str] | None = None,
    stream_timeout: float = 30.0,
    content_timeout: float | None = 600.0,
    deadline: float | None = None,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: OnRetry = None,
    rate_limit: float = 50.0,
    max_size: int = 2**24,
    proxy: Proxy = True,
    replay: Replay = "never",
    client: httpx.AsyncClient | None = None,
    clock: Clock = SYSTEM_CLOCK,
    choice: int = 0,
) -> ResponseStream[str]:
    """The text of the response at ``url`` as it arrives, piece by piece, for ``async for`` (inside
    ``async with``); ``api`` and the options as for ``stream_deltas``."""
    source = _source(
        url,
        api,
        request=request,
        token=token,
        headers=headers,
        stream_timeout=stream_timeout,
        content_timeout=content_timeout,
        deadline=deadline,
        retry=retry,
        on_retry=on_retry,
        rate_limit=rate_limit,
        max_size=max_size,
        proxy=proxy,
        replay=replay,
        client=client,
        clock=clock,
    )
    text: ResponseStream[str] = response_stream(source, parser_for(url, api, choice), text_only=True)
    return text


def _websocket(url: str) -> bool:
    return url.startswith(("ws://", "wss://"))


def _source(
    url: str,
    api: Api,
    *,
    request: Mapping[str, Any] | None,
    token: Token,
    headers: Mapping[str, str] | None,
    stream_timeout: float,
    content_timeout: float | None,
    deadline: float | None,
    retry: RetryPolicy,
    on_retry: OnRetry,
    rate_limit: float,
    max_size: int,
    proxy: Proxy,
    replay: Replay,
    client: httpx.AsyncClient | None,
    clock: Clock,
) -> Observable[Any]:
    """The source the URL's scheme names: WebSocket for ``ws(s)://``, SSE otherwise."""
    if _websocket(url):
        return from_websocket(
            url,
            api=api,
            request=request,
            token=token,
            headers=headers,
            stream_timeout=stream_timeout,
            content_timeout=content_timeout,
            deadline=deadline,
            retry=retry,
            on_retry=on_retry,
            rate_limit=rate_limit,
            max_size=max_size,
            proxy=proxy,
            client=client,
            clock=clock,
        )
    return from_sse(
        url,
        api=api,
        request=request,
        token=token,
        headers=headers,
        stream_timeout=stream_timeout,
        content_timeout=content_timeout,
        deadline=deadline,
        retry=retry,
        on_retry=on_retry,
        rate_limit=rate_limit,
        max_size=max_size,
        replay=replay,
        client=client,
        clock=clock,
    )


def parser_for(url: str, api: Api, choice: int = 0) -> Operator[Any, Chunk]:
    """The parse operator for what the URL's source gives: chunk frames, chat events or Responses events."""
    if api == "responses":
        return rxo.parse_responses()
    if _websocket(url):
        return rxo.parse()
    return rxo.parse_sse(choice)


def response_stream(
    source: Observable[Any],
    parser: Operator[Any, Chunk],
    *,
    text_only: bool,
    after_accumulate: Operator[Delta, Delta] | None = None,
) -> ResponseStream[Any]:
    """``source`` through ``parser``, reorder, the buffer, accumulate (and ``after_accumulate``, such as
    ``publish``) and finalize, each delta (or, with ``text_only``, each piece of text) passed on as
    finalize takes it."""
    finished: list[Response] = []
    stages = fuse(
        parser,
        rxo.reorder(),
        rxo.backpressure_buffer(),
        rxo.accumulate(),
        *(() if after_accumulate is None else (after_accumulate,)),
        Operator(lambda downstream, shared: _PassThenFinalize(downstream, shared, finished, text_only)),
    )
    return ResponseStream(source.pipe(stages), finished)
