"""The WebSocket source against servers we did not write: each peer here is a few lines of
websockets or raw asyncio, with none of the reference server's manners (issue 12)."""

from __future__ import annotations

import asyncio
import logging
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import Server, ServerConnection, serve

import rxstream
from tests.support import frame, partial_of, websocket_upgrade

pytestmark = pytest.mark.network

TOKEN = "peer-token-value"
PIECES = [f"piece {i} " for i in range(20)]
TEXT = "".join(PIECES)
BOUND = 2.0  # seconds beyond stream_timeout within which any error must be reported

Handler = Callable[[ServerConnection], Awaitable[None]]


def frames() -> list[bytes]:
    return [frame(i, piece, i == len(PIECES) - 1) for i, piece in enumerate(PIECES)]


class Peer:
    """A websockets server running ``handler`` on 127.0.0.1, counting its connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: Server | None = None

    async def handle(self, connection: ServerConnection) -> None:
        self.connections += 1
        await self.handler(connection)

    async def __aenter__(self) -> str:
        self.server = await serve(self.handle, "127.0.0.1", 0, compression=None, ping_interval=None)
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/stream"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close(close_connections=False)
        for connection in list(self.server.connections):
            connection.transport.abort()
        await self.server.wait_closed()


def options(**extra: Any) -> dict[str, Any]:
    return {"token": TOKEN, "request": {"prompt": "hi"}, "clock": rxstream.VirtualClock(), **extra}


async def bounded(awaitable: Awaitable[Any], seconds: float) -> tuple[Any, float]:
    """``awaitable``'s result (or the error it raised) and how long it took, failing past ``seconds``."""
    started = time.monotonic()
    try:
        result: Any = await asyncio.wait_for(awaitable, seconds)
    except rxstream.StreamError as error:
        result = error
    return result, time.monotonic() - started


# -- 1. frames that arrive while the request is being sent --------------------------------


async def push_without_reading(connection: ServerConnection) -> None:
    for data in frames():
        await connection.send(data.decode())
    connection.transport.close()  # gone before the client's request could be read


async def push_after_reading_then_close(connection: ServerConnection) -> None:
    await connection.recv()
    for data in frames():
        await connection.send(data.decode())
    await connection.close()


@pytest.mark.parametrize("handler", [push_without_reading, push_after_reading_then_close])
async def test_frames_received_while_the_request_is_sent_reach_the_pipeline(handler: Handler) -> None:
    peer = Peer(handler)
    async with peer as uri:
        response, _ = await bounded(rxstream.stream(uri, **options()), 10)
    assert isinstance(response, rxstream.Response), response
    assert response.text == TEXT and response.complete
    assert peer.connections == 1


# -- 2, 3. errors reported at once, whatever the peer does next ---------------------------


class RawPeer:
    """A raw asyncio server that answers the WebSocket handshake by hand, writes ``after``, then
    ``flood`` over and over for ``seconds``, and reads and ignores everything: no close frame,
    no pong, no TCP close."""

    def __init__(self, after: bytes = b"", flood: bytes = b"", seconds: float = 0.0) -> None:
        self.after = after
        self.flood = flood
        self.seconds = seconds
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(await websocket_upgrade(reader) + self.after)
        deadline = time.monotonic() + self.seconds
        while self.flood and time.monotonic() < deadline:
            writer.write(self.flood)
            await writer.drain()
        while await reader.read(65536):
            pass

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def __aexit__(self, *_: object) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.server.close()
        await self.server.wait_closed()


async def silent(connection: ServerConnection) -> None:
    await connection.wait_closed()  # sends nothing; the client's close ends it


async def test_a_peer_silent_after_the_handshake_is_reported_within_the_timeout() -> None:
    async with RawPeer() as uri:
        error, took = await bounded(rxstream.stream(uri, **options(stream_timeout=0.5)), 10)
    assert isinstance(error, rxstream.StreamError)
    assert isinstance(error, rxstream.StreamTimeoutError)
    assert took < 0.5 + BOUND  # the polite close (10 s for a peer that never answers) goes on in the background


async def test_a_frame_above_max_size_from_a_peer_that_never_closes_is_reported_at_once() -> None:
    async with RawPeer(wire(b"x" * 2048)) as uri:
        error, took = await bounded(rxstream.stream(uri, **options(max_size=1024, stream_timeout=5)), 10)
    assert isinstance(error, rxstream.StreamError)
    assert isinstance(error, rxstream.FrameTooLargeError), error
    assert took < BOUND


# -- 4. nothing buffered after the end ------------------------------------------------------


def wire(message: bytes) -> bytes:
    """One unmasked text frame, as a server sends it."""
    size = len(message)
    header = (
        bytes([0x81, size])
        if size < 126
        else bytes([0x81, 126]) + size.to_bytes(2, "big")
        if size < 65536
        else bytes([0x81, 127]) + size.to_bytes(8, "big")
    )
    return header + message


async def test_a_peer_flooding_after_the_final_chunk_costs_no_memory() -> None:
    tracemalloc.start()
    try:
        peer = RawPeer(b"".join(map(wire, frames())), flood=wire(frame(99, "z" * 60_000)) * 16, seconds=2.0)
        async with peer as uri:
            response, _ = await bounded(rxstream.stream(uri, **options()), 10)
            assert isinstance(response, rxstream.Response) and response.text == TEXT
            baseline = tracemalloc.get_traced_memory()[0]
            await asyncio.sleep(1.0)  # the peer floods on while the client closes
            grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert grown < 2 * 2**20, grown  # before: the backlog kept every frame (over 100 MB a second here)


# -- 5. pings are liveness, not content; the deadline bounds the whole -----------------------


async def dribble(connection: ServerConnection) -> None:
    await connection.send(frames()[0].decode())
    for _ in range(40):  # a ping every 0.1 s, and never another whole frame
        await connection.ping()
        await asyncio.sleep(0.1)


async def test_pings_keep_a_connection_alive_but_not_a_stream_without_content() -> None:
    async with Peer(dribble) as uri:
        error, took = await bounded(rxstream.stream(uri, **options(stream_timeout=0.5, content_timeout=1.5)), 10)
    assert isinstance(error, rxstream.StreamTimeoutError) and (error.kind, error.queued) == ("content", False)
    assert partial_of(error).text == PIECES[0] and "after the answer began" in str(error)
    assert 1.5 <= took < 1.5 + BOUND  # the pings held the idle timeout (0.5 s) off


async def pings_only(connection: ServerConnection) -> None:
    for _ in range(40):  # a queued request: the connection kept alive, no frame
        await connection.ping()
        await asyncio.sleep(0.1)


async def test_pings_alone_end_at_content_timeout_saying_queued() -> None:
    async with Peer(pings_only) as uri:
        error, took = await bounded(rxstream.stream(uri, **options(stream_timeout=0.5, content_timeout=1.5)), 10)
    assert isinstance(error, rxstream.StreamTimeoutError) and (error.kind, error.queued) == ("content", True)
    assert "queued: only keep-alives for 1.5 s" in str(error) and partial_of(error).text == ""
    assert 1.5 <= took < 1.5 + BOUND


async def slow_but_steady(connection: ServerConnection) -> None:
    for data in frames():
        await connection.send(data.decode())
        await asyncio.sleep(0.1)


async def test_the_deadline_bounds_a_stream_that_keeps_progressing() -> None:
    async with Peer(slow_but_steady) as uri:
        error, took = await bounded(rxstream.stream(uri, **options(stream_timeout=0.5, deadline=0.6)), 10)
    assert isinstance(error, rxstream.StreamError), error
    assert isinstance(error, rxstream.StreamTimeoutError) and error.kind == "deadline"
    assert 0 < len(partial_of(error).text) < len(TEXT)  # what came before the deadline is kept
    assert took < 0.6 + BOUND
    async with Peer(slow_but_steady) as uri:  # the same peer within its deadline
        response, _ = await bounded(rxstream.stream(uri, **options(stream_timeout=0.5, deadline=8)), 10)
    assert isinstance(response, rxstream.Response) and response.text == TEXT


# -- 6. the handshake's status decides, as for SSE --------------------------------------------


def refusing(status: int) -> Callable[[ServerConnection, Any], Any]:
    def process_request(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(status, "no\n")

    return process_request


@pytest.mark.parametrize("status, retried", [(404, False), (400, False), (410, False), (408, True), (503, True)])
async def test_the_status_at_the_handshake_decides_whether_to_retry(status: int, retried: bool) -> None:
    retries: list[rxstream.Retry] = []
    server = await serve(silent, "127.0.0.1", 0, process_request=refusing(status))
    async with server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        error, _ = await bounded(rxstream.stream(uri, **options(on_retry=retries.append)), 10)
    assert isinstance(error, rxstream.APIStatusError) and f"HTTP {status}" in str(error)
    assert (error.status_code, error.server_message, error.body) == (status, "no", "no\n")  # the handshake's body
    assert len(retries) == (3 if retried else 0) and error.attempts == (4 if retried else 1)


# -- retries are told: logged and given to on_retry -----------------------------------------


async def abort_after_five(connection: ServerConnection) -> None:
    request = orjson.loads(await connection.recv())
    start = request.get("resume_from", 0)
    for data in frames()[start : start + 5]:
        await connection.send(data.decode())
    connection.transport.abort()


async def test_each_reconnect_is_logged_and_given_to_on_retry(caplog: pytest.LogCaptureFixture) -> None:
    retries: list[rxstream.Retry] = []
    peer = Peer(abort_after_five)
    with caplog.at_level(logging.WARNING, logger="rxstream"):
        async with peer as uri:
            response, _ = await bounded(rxstream.stream(uri, **options(on_retry=retries.append)), 10)
    assert isinstance(response, rxstream.Response) and response.text == TEXT
    assert peer.connections == 4 and response.stats.retries == 3
    assert [(retry.attempt, retry.retries, retry.delay) for retry in retries] == [(1, 3, 1.0)] * 3  # progress forgives
    assert all("close code 1006" in retry.reason for retry in retries)
    logged = [record.getMessage() for record in caplog.records if record.name == "rxstream"]
    assert len(logged) == 3 and all("retry 1 of 3 in 1 s" in line and TOKEN not in line for line in logged)


# -- any of it, drawn at random ---------------------------------------------------------------


async def read_client_message(reader: asyncio.StreamReader) -> bytes:
    """One masked frame from the client (its request), unmasked."""
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4)
    payload = await reader.readexactly(size)
    return bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


class FaultyPeer(RawPeer):
    """The first connection pushes its frames before or after reading the request, then at frame
    ``cut`` closes cleanly, aborts, goes silent or floods; later ones serve from ``resume_from``."""

    def __init__(self, before_reading: bool, cut: int, fault: str) -> None:
        super().__init__()
        self.before_reading = before_reading
        self.cut = cut
        self.fault = fault

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        first = len(self.writers) == 1
        writer.write(await websocket_upgrade(reader))
        start = 0
        if not (first and self.before_reading):
            start = orjson.loads(await read_client_message(reader)).get("resume_from", 0)
        stop = self.cut if first else len(PIECES)
        writer.write(b"".join(map(wire, frames()[start:stop])))
        await writer.drain()
        if not first or self.fault == "close":
            writer.write(b"\x88\x02\x03\xe8")  # close 1000
            await writer.drain()
            writer.close()
        elif self.fault == "abort":
            writer.transport.abort()
        elif self.fault == "flood":
            junk = wire(frame(99, "z" * 60_000)) * 16
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                writer.write(junk)
                await writer.drain()
        while not writer.transport.is_closing() and await reader.read(65536):
            pass  # "silent": reads and says nothing


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before_reading=st.booleans(),
    cut=st.integers(0, len(PIECES)),
    fault=st.sampled_from(["close", "abort", "silent", "flood"]),
)
async def test_any_peer_behaviour_gives_the_exact_text_or_a_typed_error_with_every_chunk_kept(
    before_reading: bool, cut: int, fault: str
) -> None:
    if fault == "flood":
        cut = len(PIECES)  # a flood after the final chunk
    tracemalloc.start()
    try:
        async with FaultyPeer(before_reading, cut, fault) as uri:
            result, took = await bounded(rxstream.stream(uri, **options(stream_timeout=0.3)), 10)
            grown = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert took < 0.3 + BOUND
    assert grown < 8 * 2**20, grown  # the flood is not buffered
    if fault == "silent" and cut < len(PIECES):
        assert isinstance(result, rxstream.StreamError), result
        assert isinstance(result, rxstream.StreamTimeoutError)
        assert partial_of(result).text == "".join(PIECES[:cut])  # every chunk received is kept
    else:
        assert isinstance(result, rxstream.Response), result
        assert result.text == TEXT and result.complete
