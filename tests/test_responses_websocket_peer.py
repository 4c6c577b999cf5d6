"""stream_responses over ws:// against a Responses peer written here on websockets' server, not rxstream.server.

The peer records every response.create message and every resuming GET (answered, on the same port, with
the SSE body of the events after ``starting_after``). It streams before reading the request, closes with
each retried code or abruptly (1006, or a TCP reset), omits the final event, numbers from 1, and answers
the handshake 429 with Retry-After. The openai SDK's responses.connect() against the same peer is the
oracle for what the request message looks like.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openai
import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

import rxstream
from rxstream.transport._websocket import http_url_of
from tests.responses_events import Message, response_events, sse_body
from tests.support import partial_of, websocket_upgrade
from tests.test_responses_sse import (
    EVENTS,
    ITEMS,
    USAGE,
    failed,
    in_memory,
    in_memory_partial,
    resent_and_reordered,
    same,
    streamed,
)
from tests.test_responses_sse import Peer as SSEPeer

pytestmark = pytest.mark.network  # every test here talks to a peer on 127.0.0.1

RESET = -1  # a close "code" for a TCP reset: no close frame, RST instead of FIN
ABORT = 1006  # no close frame, the connection cut
NO_STATUS = 1005  # a close frame without a code


@dataclass
class Reply:
    """What the peer does on one WebSocket connection: the events it sends, ``pushed`` of them before
    reading the request, then how it ends (a close code, ``ABORT``, ``RESET``, or ``NO_STATUS``)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    close: int = 1000
    reason: str = ""  # of the close frame
    pushed: int = 0
    status: int = 101  # or a refusal of the handshake
    retry_after: str | None = None


@dataclass
class Peer(SSEPeer):
    """The SSE peer's record (its ``url`` the WebSocket one), and what came over WebSocket."""

    handshakes: list[dict[str, str]] = field(default_factory=list)  # the headers of each
    created: list[dict[str, Any]] = field(default_factory=list)  # each response.create message received
    resumes: list[dict[str, list[str]]] = field(default_factory=list)  # the query of each resuming GET
    resume_tokens: list[str | None] = field(default_factory=list)  # the Authorization of each


Respond = Callable[[int], Reply]  # (how many handshakes came before) -> what to do


@asynccontextmanager
async def serve_peer(respond: Respond, *resumed: list[dict[str, Any]]) -> AsyncIterator[Peer]:
    """The peer; the n-th resuming GET gets the events of ``resumed[n]`` (the last one again, ``EVENTS``
    when none) numbered after its ``starting_after``."""
    peer = Peer()
    replies: dict[ServerConnection, Reply] = {}

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade") is None:  # the resuming GET of a background response, over SSE
            query = parse_qs(urlsplit(request.path).query)
            peer.resumes.append(query)
            peer.resume_tokens.append(request.headers.get("Authorization"))
            starting_after = int(query["starting_after"][0]) if "starting_after" in query else -1
            events = (resumed or (EVENTS,))[min(len(peer.resumes), len(resumed)) - 1]
            response = connection.respond(200, "")
            response.body = sse_body([event for event in events if event["sequence_number"] > starting_after])
            del response.headers["Content-Type"], response.headers["Content-Length"]
            response.headers["Content-Type"] = "text/event-stream"
            response.headers["Content-Length"] = str(len(response.body))
            return response
        peer.handshakes.append(dict(request.headers.raw_items()))
        reply = respond(len(peer.handshakes) - 1)
        if reply.status != 101:
            refusal = connection.respond(reply.status, "no\n")
            if reply.retry_after is not None:
                refusal.headers["Retry-After"] = reply.retry_after
            return refusal
        replies[connection] = reply
        return None

    async def handle(connection: ServerConnection) -> None:
        reply = replies.pop(connection)
        for event in reply.events[: reply.pushed]:  # before the request is read
            await connection.send(orjson.dumps(event).decode())
        try:
            peer.created.append(orjson.loads(await connection.recv()))
        except ConnectionClosed:
            return  # the client had all it needed

        for event in reply.events[reply.pushed :]:
            await connection.send(orjson.dumps(event).decode())
        await end(connection, reply.close, reply.reason)

    async with serve(handle, "127.0.0.1", 0, process_request=process_request, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        peer.url = f"ws://127.0.0.1:{port}/v1/responses"
        yield peer


async def end(connection: ServerConnection, close: int, reason: str) -> None:
    transport = connection.transport
    while transport.get_write_buffer_size():  # what was sent reaches the client before the cut
        await asyncio.sleep(0.001)
    if close == RESET:
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    elif close == ABORT:
        transport.abort()
    elif close == NO_STATUS:
        transport.write(Frame(Opcode.CLOSE, b"").serialize(mask=False))
        transport.close()
    else:
        await connection.close(close, reason)


async def test_the_request_is_the_message_the_openai_sdk_sends() -> None:
    async with serve_peer(lambda number: Reply(EVENTS)) as peer:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url="http://127.0.0.1:1/v1")
        client.websocket_base_url = peer.url.removesuffix("/responses")
        async with client.responses.connect() as connection:
            await connection.response.create(model="gpt-test", input="What is the answer?")
            async for event in connection:
                if event.type == "response.completed":
                    break
        await streamed(peer)
    sdk, ours = peer.created
    assert ours == sdk == {"type": "response.create", "model": "gpt-test", "input": "What is the answer?"}
    assert peer.handshakes[1]["Authorization"] == peer.handshakes[0]["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(EVENTS),
        Reply(response_events(ITEMS, usage=USAGE, start=1)),
        Reply(resent_and_reordered(EVENTS)),
        Reply(EVENTS, pushed=3),
        Reply(EVENTS, pushed=len(EVENTS)),
        Reply(EVENTS, close=ABORT),  # the final event came: nothing is missing
    ],
    ids=["from 0", "from 1", "resent and reordered", "3 pushed before reading", "all pushed", "cut after the end"],
)
async def test_a_whole_stream_is_the_in_memory_result_with_one_response_create(reply: Reply) -> None:
    async with serve_peer(lambda number: reply) as peer:
        response = await streamed(peer)
    same(response, in_memory(reply.events))
    # a whole response pushed before the request ends the stream before there is anything to ask for
    assert len(peer.created) == (reply.pushed < len(reply.events)) and peer.resumes == []
    assert response.stats.retries == 0


DROPS = [ABORT, RESET, NO_STATUS, 1001, 1011, 1012, 1013]


@pytest.mark.parametrize("close", DROPS, ids=lambda code: {RESET: "reset"}.get(code, str(code)))
@pytest.mark.parametrize("start", [0, 1])
@pytest.mark.parametrize("sent", [3, 10, -1])
async def test_a_dropped_background_response_resumes_over_sse_after_the_last_event_delivered(
    close: int, start: int, sent: int
) -> None:
    events = response_events(ITEMS, usage=USAGE, start=start)
    cut = events[:sent]
    async with serve_peer(lambda number: Reply(cut, close=close), events) as peer:
        response = await streamed(peer, background=True)
    # exact, and nothing came twice: the GET asked after the last event delivered, not before, not after
    same(response, in_memory(events))
    assert response.stats.retries == 1 and response.stats.duplicates == 0
    assert len(peer.created) == 1 and peer.created[0]["background"] is True and "stream" not in peer.created[0]
    [query] = peer.resumes
    assert query.keys() == {"stream", "starting_after"} and query["stream"] == ["true"]
    last_sent = cut[-1]["sequence_number"]
    if close == RESET:  # a reset may discard what the client's socket had received and not yet read
        assert int(query["starting_after"][0]) <= last_sent
    else:
        assert query["starting_after"] == [str(last_sent)]


async def test_a_resumed_stream_that_was_reordered_asks_after_what_was_delivered_in_order() -> None:
    swapped = [EVENTS[0], EVENTS[1], EVENTS[3], EVENTS[2], EVENTS[4], EVENTS[6], EVENTS[5], EVENTS[8]]  # 7 is missing
    async with serve_peer(lambda number: Reply(swapped, close=ABORT)) as peer:
        response = await streamed(peer, background=True)
    same(response, in_memory(EVENTS))
    assert peer.resumes == [{"stream": ["true"], "starting_after": ["6"]}]  # 0..6 in order; 8 is held, then resent
    assert response.stats.duplicates == 1 and len(peer.created) == 1


async def test_a_resuming_get_that_ends_short_is_followed_by_one_asking_after_what_it_brought_with_a_fresh_token() -> (
    None
):
    short = [event for event in EVENTS if event["sequence_number"] <= 12]  # the first GET's body ends after 12
    tokens = iter(["sk-1", "sk-2", "sk-3"])
    async with serve_peer(lambda number: Reply(EVENTS[:4], close=1011), short, EVENTS) as peer:
        response = await streamed(peer, background=True, token=lambda: next(tokens))
    same(response, in_memory(EVENTS))
    assert [query["starting_after"] for query in peer.resumes] == [["3"], ["12"]] and len(peer.created) == 1
    assert response.stats.retries == 2 and response.stats.duplicates == 0
    # the token is asked for again for every connection, the resuming GETs too
    assert [peer.handshakes[0]["Authorization"], *peer.resume_tokens] == ["Bearer sk-1", "Bearer sk-2", "Bearer sk-3"]


@pytest.mark.parametrize("close", DROPS, ids=lambda code: {RESET: "reset"}.get(code, str(code)))
@pytest.mark.parametrize("sent", [0, 3, 10, -1])
async def test_a_dropped_response_that_is_not_background_fails_with_the_partial_and_no_second_response_create(
    close: int, sent: int
) -> None:
    cut = EVENTS[:sent]
    async with serve_peer(lambda number: Reply(cut, close=close)) as peer:
        error = await failed(peer)
    assert len(peer.created) == 1 and len(peer.handshakes) == 1 and peer.resumes == []
    delivered = partial_of(error).chunks  # one chunk an event
    if close != RESET:  # a reset may discard what the client's socket had received and not yet read
        assert delivered == len(cut)
    assert (partial_of(error).text, partial_of(error).reasoning, partial_of(error).tool_calls) == in_memory_partial(
        cut[:delivered]
    )
    assert partial_of(error).id == ("resp_0123" if cut else None)
    cause = error
    assert isinstance(cause, rxstream.ConnectionLostError)
    assert '"background": true' in str(cause) and "a new response.create would start a new (paid) response" in str(
        cause
    )


async def test_the_final_event_omitted_fails_or_resumes_when_background() -> None:
    cut = EVENTS[:-1]
    async with serve_peer(lambda number: Reply(cut)) as peer:
        error = await failed(peer)
    assert len(peer.created) == 1 and peer.resumes == []
    assert partial_of(error).text == "The answer is forty-two." and not partial_of(error).complete
    assert isinstance(error, rxstream.ConnectionLostError)

    async with serve_peer(lambda number: Reply(cut), EVENTS) as peer:
        response = await streamed(peer, background=True)
    same(response, in_memory(EVENTS))
    assert peer.resumes == [{"stream": ["true"], "starting_after": [str(len(EVENTS) - 2)]}]


@pytest.mark.parametrize("close", [1003, 1008, 4000])
async def test_a_close_code_that_is_not_retried_fails_even_a_background_response(close: int) -> None:
    async with serve_peer(lambda number: Reply(EVENTS[:5], close=close)) as peer:
        error = await failed(peer, background=True)
    assert len(peer.created) == 1 and peer.resumes == []
    assert isinstance(error, rxstream.ConnectionLostError | rxstream.AuthenticationError)
    assert partial_of(error).text == "" and partial_of(error).reasoning == "Let me "


async def test_429_at_the_handshake_waits_retry_after_and_sends_response_create_once() -> None:
    def respond(number: int) -> Reply:
        return Reply(status=429, retry_after="3") if number < 2 else Reply(EVENTS)

    clock = rxstream.VirtualClock()
    async with serve_peer(respond) as peer:
        response = await streamed(peer, clock=clock)
    same(response, in_memory(EVENTS))
    assert len(peer.handshakes) == 3 and len(peer.created) == 1
    assert clock.sleeps[-2:] == [3.0, 3.0]  # Retry-After, above the backoff of 1 and 2 s


async def test_rate_limited_to_the_end_is_a_typed_error_and_makes_nothing() -> None:
    async with serve_peer(lambda number: Reply(status=429, retry_after="1")) as peer:
        error = await failed(peer, retry=rxstream.RetryPolicy(max_retries=2))
    assert len(peer.handshakes) == 3 and peer.created == []
    assert isinstance(error, rxstream.RateLimitedError)


async def test_a_failure_the_peer_streams_is_typed_and_not_retried() -> None:
    events = response_events(ITEMS[:2], status="failed")
    async with serve_peer(lambda number: Reply(events, close=ABORT)) as peer:
        error = await failed(peer, background=True)
    assert len(peer.created) == 1 and peer.resumes == []
    cause = error
    assert isinstance(cause, rxstream.ResponseFailedError) and cause.code == "server_error"
    assert partial_of(error).text == "The answer is forty-two."


async def test_a_peer_that_streams_and_closes_before_the_request_went_out_is_not_asked_again() -> None:
    # Raw asyncio: the 101, five events and a close in one write, so the client has them all before it
    # could send response.create; the events came, so a response exists and must not be created again.
    handshakes = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal handshakes
        handshakes += 1
        upgrade = await websocket_upgrade(reader)
        frames = b"".join(Frame(Opcode.TEXT, orjson.dumps(event)).serialize(mask=False) for event in EVENTS[:5])
        close = Frame(Opcode.CLOSE, struct.pack("!H", 1011)).serialize(mask=False)
        writer.write(upgrade + frames + close)
        await reader.read()  # until the client has gone
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        peer = SSEPeer(url=f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/responses")
        error = await failed(peer)
    finally:
        server.close()
        await server.wait_closed()
    assert handshakes == 1 and isinstance(error, rxstream.ConnectionLostError)
    assert (
        partial_of(error).chunks == 5
        and partial_of(error).id == "resp_0123"
        and partial_of(error).reasoning == "Let me "
    )


def test_the_resuming_get_goes_to_the_http_url_of_the_websocket_one() -> None:
    # On loopback httpx takes ws:// as http://; only TLS would tell them apart, so the mapping is checked here.
    assert http_url_of("wss://api.openai.com/v1/responses") == "https://api.openai.com/v1/responses"
    assert http_url_of("ws://127.0.0.1:8765/v1/responses?x=ws") == "http://127.0.0.1:8765/v1/responses?x=ws"


async def test_connect_responses_shows_the_text_the_tool_call_and_a_refusal_live() -> None:
    events = response_events((*ITEMS, Message(("I can", "not."), refusal=True)), usage=USAGE)
    async with serve_peer(lambda number: Reply(events)) as peer:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "rxstream", "connect", "--responses", peer.url, "--model", "gpt-test", "--prompt", "hi"),
            *("--token-env", "PEER_TOKEN"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PEER_TOKEN": "sk-test"},
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == 'The answer is forty-two.\n[tool call lookup] {"q": "42"}\n[refusal] I cannot.'
    assert peer.created == [{"type": "response.create", "model": "gpt-test", "input": "hi"}]
    assert peer.handshakes[0]["Authorization"] == "Bearer sk-test"


async def test_a_token_the_peer_echoes_in_its_close_reason_is_redacted() -> None:
    async with serve_peer(lambda number: Reply(EVENTS[:5], close=1011, reason="overloaded for sk-test")) as peer:
        error = await failed(peer)
    assert "sk-test" not in str(error) and "overloaded for [redacted]" in str(error)
