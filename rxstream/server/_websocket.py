"""The reference WebSocket server: speaks the chunk protocol and injects faults on demand."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from ._admission import ReferenceEndpoint
from ._content import split
from ._faults import Faults, Send, plan

POLICY_VIOLATION = 1008
BATCH = 64  # frames written at once when no delay is asked for
REQUEST_WAIT = 0.5  # how long a connection that may be resuming waits for its request message


class ReferenceServer(ReferenceEndpoint):
    """Streams ``text`` in chunks of ``chunk_size`` characters to every client that presents ``token``.

    ``text`` may also be the chunks themselves (a list of strings), as a recording has them.

    Use as ``async with ReferenceServer(text) as server:`` and connect to ``server.uri``.
    """

    def __init__(
        self,
        text: str | Sequence[str],
        *,
        chunk_size: int = 64,
        token: str | None = None,
        faults: Faults = Faults(),
        qps: float = 50.0,
        resume: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(token=token, faults=faults, qps=qps, host=host, port=port)
        self.pieces = split(text, chunk_size)
        self.resume = resume
        self.connections: set[ServerConnection] = set()
        self._frames = [self._encode(index) for index in range(len(self.pieces))]  # on the wire, framed
        self._server: Server | None = None
        self._cut_short = False  # a connection ended before its stream did: the next may ask to resume

    def __repr__(self) -> str:  # the token stays out of it
        return (
            f"ReferenceServer({self.uri if self._server else 'not started'}, {len(self.pieces)} chunks, {self.faults})"
        )

    @property
    def uri(self) -> str:
        return f"ws://{self.host}:{self.port}/stream"

    def _encode(self, index: int) -> bytes:
        """Chunk ``index`` as a whole text frame: a server's frames are not masked, so each is
        framed once and sent as it is to every client."""
        chunk = {"index": index, "data": self.pieces[index], "is_final": index == len(self.pieces) - 1}
        message = orjson.dumps({"chunk": chunk, "timestamp": int(time.time())})
        return Frame(Opcode.TEXT, message).serialize(mask=False)

    async def start(self) -> ReferenceServer:
        # No permessage-deflate: it halves throughput and the frames are small.
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._admit, compression=None, max_size=2**20
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer 429 for the first ``reject_first`` handshakes and beyond ``qps`` per second."""
        if self.admission.rate_limited():
            response = connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "rate limited: at most 50 requests/s\n")
            response.headers["Retry-After"] = "1"
            return response
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        if not self.admission.authorized(connection.request.headers.get("Authorization")):  # type: ignore[union-attr]
            await connection.close(POLICY_VIOLATION, "invalid bearer token")
            return
        number = self.stats.connections
        self.stats.connections += 1
        self.connections.add(connection)
        # The request matters only for its resume_from, so it is waited for only once a stream has
        # been cut short: a first connection streams at once, with or without a request.
        waits, self._cut_short = self.resume and self._cut_short, self._cut_short or self.faults.cut_short(number)
        played = False
        try:
            request = await self._request(connection) if waits else {}
            start = int(request.get("resume_from", 0))
            self.stats.resumed_from = start
            played = await self._play(connection, plan(len(self.pieces), self.faults, number, start))
            if played:
                if not waits:  # a request still on its way is taken first, so its sender never meets a closed socket
                    await self._request(connection)
                await connection.close()  # then at once: the protocol allows up to 10 s after the final chunk
        except ConnectionClosed:
            pass  # the client left first: after its final chunk, or to request the stream again
        finally:
            self._cut_short = self._cut_short or not played
            self.connections.discard(connection)

    async def _request(self, connection: ServerConnection) -> dict[str, Any]:
        """The client's optional request message, or {} if none comes within ``REQUEST_WAIT``."""
        try:
            message = await asyncio.wait_for(connection.recv(), REQUEST_WAIT)
        except TimeoutError:
            return {}
        request = orjson.loads(message)
        return request if isinstance(request, dict) else {}

    async def _play(self, connection: ServerConnection, steps: Iterable[Send]) -> bool:
        """Send the planned steps; False if a fault ended the connection early."""
        batch: list[bytes] = []
        for step in steps:
            if step.kind == "chunk" and not step.delay and len(batch) < BATCH:
                batch.append(self._frames[step.index])
                continue
            await self._send_batch(connection, batch)
            if step.delay:
                await asyncio.sleep(step.delay)
            if step.kind == "chunk":
                batch.append(self._frames[step.index])
            elif step.kind == "malformed":
                await connection.send('{"chunk": {"index": ', text=True)
            elif step.kind == "oversize":
                await connection.send(b"x" * self.faults.oversize_bytes, text=True)
            elif step.kind == "abort":
                connection.transport.abort()  # no close frame: the client sees 1006
                return False
            else:  # stall: silent, connection open, until the client gives up
                await connection.wait_closed()
                return False
        await self._send_batch(connection, batch)
        return True

    async def _send_batch(self, connection: ServerConnection, frames: list[bytes]) -> None:
        """Write ``frames`` (framed already) at once and wait for the socket to take them.

        ``send()`` frames, writes and drains once per message, which limits a server that sends
        as fast as it can. Whole frames written straight to the transport leave websockets'
        protocol state as it was: it holds no state about data frames sent whole.
        """
        if not frames:
            return
        if connection.protocol.state is not State.OPEN:
            await connection.wait_closed()
            raise connection.close_exc
        connection.transport.writelines(frames)
        self.stats.frames_sent += len(frames)
        frames.clear()
        await connection.drain()
