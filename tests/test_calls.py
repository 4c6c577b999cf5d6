"""The one-call entry points as an editor and a loop see them: explicit keyword parameters, one name for the
request body, ``async for`` over text and deltas on every transport, and ``async with`` closing the connection
when the loop is left early."""

from __future__ import annotations

import asyncio
import inspect
import pydoc
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

import rxstream
from rxstream import operators as rxo
from rxstream.server import Faults, ReferenceResponsesServer, ReferenceServer, ReferenceSSEServer

from .responses_events import Message, response_events
from .support import frame, loopback, read_request

TEXT = "Every transport, one loop. " * 8
CALLS = [rxstream.stream, rxstream.stream_sse, rxstream.stream_responses, rxstream.stream_text, rxstream.stream_deltas]


@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.__name__)
def test_every_parameter_is_an_explicit_keyword_with_its_default(call: Callable[..., Any]) -> None:
    parameters = inspect.signature(call).parameters
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    assert {"request", "token", "headers", "stream_timeout", "deadline", "retry", "on_retry", "clock"} <= set(
        parameters
    )
    assert parameters["stream_timeout"].default == 30.0
    shown = re.sub(".\b", "", pydoc.render_doc(call))  # what help() prints, without its overstruck bold
    assert all(f"{name}:" in shown for name in parameters) and "**" not in shown.split(")")[0]


def test_the_object_to_async_iterable_gives_shows_only_what_a_user_needs() -> None:
    iterator = rxstream.to_async_iterable(rxstream.from_frames([frame(0, "hi", True)]).pipe(rxo.parse()))
    assert isinstance(iterator, rxstream.AsyncStream)
    assert [name for name in dir(iterator) if not name.startswith("_")] == ["aclose", "stats"]
    assert isinstance(iterator.stats, rxstream.Stats)


@asynccontextmanager
async def endpoint(transport: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A reference server of each kind, and the arguments that read it with stream_text/stream_deltas."""
    if transport == "websocket":
        async with ReferenceServer(TEXT, chunk_size=8, token="t") as server:
            yield server.uri, {"token": "t", "request": {}}
    elif transport == "sse":
        async with ReferenceSSEServer(TEXT, chunk_size=8) as sse:
            yield sse.url, {"request": rxstream.chat_request("m", "hi")}
    else:
        async with ReferenceResponsesServer(TEXT, chunk_size=8) as responses:
            url = responses.websocket_url if transport == "responses-websocket" else responses.url
            yield url, {"api": "responses", "request": rxstream.responses_request("m", "hi")}


TRANSPORTS = ["websocket", "sse", "responses-sse", "responses-websocket"]


@pytest.mark.network
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_for_over_the_text_of_every_transport(transport: str) -> None:
    async with endpoint(transport) as (url, arguments):
        async with rxstream.stream_text(url, **arguments) as text:
            pieces = [piece async for piece in text]
    assert "".join(pieces) == TEXT and all(pieces)
    assert text.response is not None and text.response.complete and text.response.text == TEXT
    assert text.stats.chunks == text.response.chunks >= len(pieces)


@pytest.mark.network
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_for_over_the_deltas_of_every_transport(transport: str) -> None:
    async with endpoint(transport) as (url, arguments):
        async with rxstream.stream_deltas(url, **arguments) as deltas:
            seen = [delta async for delta in deltas]
    assert "".join(delta.text for delta in seen) == TEXT
    assert str(seen[-1].transcript.text) == TEXT and seen[-1].chunk.is_final
    assert deltas.response is not None and deltas.response.text == TEXT


# Peers that send two pieces of text and then wait for the client to go: whether it closed the connection.
# The events are OpenAI's: chat completion chunks (https://platform.openai.com/docs/api-reference/chat-streaming)
# and Responses streaming events (https://platform.openai.com/docs/api-reference/responses-streaming), over SSE
# or, for Responses, one event a WebSocket message (https://developers.openai.com/api/reference/resources/responses/websocket-events).
Peer = Callable[[asyncio.Event], Awaitable[Any]]


def sse_body(api: str) -> bytes:
    if api == "responses":
        events = response_events([Message(["one ", "two ", "three"])])[:6]  # created … the first deltas
    else:
        events = [{"choices": [{"index": 0, "delta": {"content": word}}]} for word in ("one ", "two ")]
    return b"".join(b"data: " + orjson.dumps(event) + b"\n\n" for event in events)


@asynccontextmanager
async def sse_peer(api: str, closed: asyncio.Event) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + sse_body(api))
        await writer.drain()
        while await reader.read(1024):  # until the client closes its end
            pass
        closed.set()

    async with loopback(handle) as url:
        yield url + ("/v1/responses" if api == "responses" else "/v1/chat/completions")


@asynccontextmanager
async def websocket_peer(api: str, closed: asyncio.Event) -> AsyncIterator[str]:
    async def handle(connection: ServerConnection) -> None:
        await connection.recv()  # the request
        if api == "responses":
            for event in response_events([Message(["one ", "two ", "three"])])[:6]:
                await connection.send(orjson.dumps(event).decode())
        else:
            for index, word in enumerate(("one ", "two ")):
                await connection.send(frame(index, word).decode())
        await connection.wait_closed()
        closed.set()

    async with serve(handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}" + ("/v1/responses" if api == "responses" else "")


@pytest.mark.network
@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("peer", [sse_peer, websocket_peer], ids=["sse", "websocket"])
@pytest.mark.parametrize("call", [rxstream.stream_text, rxstream.stream_deltas], ids=["text", "deltas"])
async def test_leaving_the_loop_early_inside_async_with_closes_the_connection(
    call: Callable[..., rxstream.ResponseStream[Any]], peer: Callable[..., Any], api: str
) -> None:
    closed = asyncio.Event()
    async with peer(api, closed) as url:
        async with call(url, api=api, request={}) as stream:
            async for _ in stream:
                break
        await asyncio.wait_for(closed.wait(), 10)  # the peer saw the connection end, with the stream unfinished
    assert stream.response is None


@pytest.mark.network
async def test_json_still_names_the_body_on_the_sse_calls_with_a_deprecation_warning() -> None:
    async with ReferenceSSEServer(TEXT, chunk_size=8) as server:
        with pytest.warns(DeprecationWarning, match="request="):
            response = await rxstream.stream_sse(server.url, json=rxstream.chat_request("m", "hi"))
    assert response.text == TEXT
    with pytest.raises(TypeError, match="once"):
        await rxstream.stream_sse(server.url, json={}, request={})


@pytest.mark.network
@pytest.mark.parametrize("call", [rxstream.stream_text, rxstream.stream_deltas], ids=["text", "deltas"])
async def test_a_stream_that_ends_early_raises_with_what_came(
    call: Callable[..., rxstream.ResponseStream[Any]],
) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # two events, then the body ends: no finish reason, no [DONE]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + sse_body("chat"))
        await writer.drain()

    async with loopback(cut) as origin:
        with pytest.raises(rxstream.ConnectionLostError) as caught:  # not a silent end of the loop
            async with call(origin + "/v1/chat/completions", request={}) as stream:
                async for _ in stream:
                    pass
    assert caught.value.partial is not None and caught.value.partial.text == "one two "
    assert stream.response is None


@pytest.mark.network
async def test_a_failing_stream_raises_the_typed_error_with_the_partial() -> None:
    faults = Faults(malformed_at=3)
    async with ReferenceServer(TEXT, chunk_size=8, token="t", faults=faults) as server:
        with pytest.raises(rxstream.FrameError) as caught:
            async with rxstream.stream_text(server.uri, token="t", request={}) as text:
                async for _ in text:
                    pass
    assert caught.value.partial is not None and caught.value.partial.text == TEXT[:24]
