"""The WebSocket source against servers we did not write: each peer here is a few lines of
websockets or raw asyncio, with none of the reference server's manners (issue 12)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

import rxstream
from tests.support import frame

TOKEN = "peer-token-value"
PIECES = [f"piece {i} " for i in range(20)]
TEXT = "".join(PIECES)
BOUND = 2.0  # seconds beyond stream_timeout within which any error must be reported
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B85"

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
