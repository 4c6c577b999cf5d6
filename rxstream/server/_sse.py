"""The reference SSE endpoint: OpenAI-compatible chat-completion streams, with the same faults.

A small HTTP/1.1 server on asyncio streams (no dependency): POST ``/v1/chat/completions``
(or ``/chat/completions``) answers ``text/event-stream``, one ``chat.completion.chunk``
event per piece, each with ``id: <index>``, then a usage chunk and ``data: [DONE]``. A
``Last-Event-ID`` header resumes after that id; the body ends by closing the connection.

It plays only the faults an SSE body can have. A body is one ordered byte stream and the
client numbers its events by their position, so an event reordered, duplicated or dropped
would make another answer, not a fault to recover from: those three are refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Self

import orjson

from ..protocol._sse import SSEEncoder
from ._admission import ReferenceEndpoint
from ._content import split
from ._faults import Faults, Send, plan

MODEL = "rxstream-reference"


ENCODER = SSEEncoder()


def sse_data(data: bytes) -> bytes:
    """``data`` as the one data line of an SSE event."""
    return ENCODER.encode(data.decode())


async def until_gone(reader: asyncio.StreamReader) -> None:
    """Return once the client has closed its end of the connection (what it still sends is dropped)."""
    try:
        while await reader.read(2**16):
            pass
    except ConnectionError:
        pass


class SSEEndpoint(ReferenceEndpoint):
    """A reference endpoint answering HTTP/1.1 requests with ``text/event-stream`` bodies that end
    by closing the connection. Subclasses answer a request in ``_answer``."""

    MALFORMED = b'{"choices": ['  # the data of an event that is not JSON

    def __init__(self, *, token: str | None, faults: Faults, qps: float, host: str, port: int) -> None:
        super().__init__(token=token, faults=faults, qps=qps, host=host, port=port)
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}  # the open ones, each writer's reader
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.transport.abort()
            await self._server.wait_closed()
            # Each handler ends once it sees its connection gone: waiting for them here keeps a
            # program that exits right after from cancelling them midway.
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections[writer] = reader
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in head[1:] if line)
            }
            if headers.get("upgrade", "").lower() == "websocket":
                await self._upgrade(reader, writer, target, headers)
            else:
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                await self._answer(writer, method, target, headers, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client left
        finally:
            self._connections.pop(writer, None)
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        raise NotImplementedError

    async def _upgrade(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str, headers: dict[str, str]
    ) -> None:
        """Answer a WebSocket handshake; by default there is no WebSocket endpoint."""
        self._status(writer, "404 Not Found", b'{"error": "no WebSocket endpoint here"}')

    def _refused(self, writer: asyncio.StreamWriter, headers: dict[str, str]) -> bool:
        """Answer 401 or 429 when the token is wrong or the rate too high: whether it did."""
        if not self.admission.authorized(headers.get("authorization")):
            self._status(writer, "401 Unauthorized", b'{"error": "invalid bearer token"}')
            return True
        if self.admission.rate_limited():
            self._status(writer, "429 Too Many Requests", b'{"error": "rate limited"}', "Retry-After: 1\r\n")
            return True
        return False

    def _stream_head(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )
        writer.write(b": keep-alive\n\n")

    def _status(self, writer: asyncio.StreamWriter, status: str, body: bytes, extra: str = "") -> None:
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode()
            + body
        )

    async def _play(
        self,
        writer: asyncio.StreamWriter,
        steps: Iterable[Send],
        events: Sequence[bytes],
        frame: Callable[[bytes], bytes] = sse_data,
    ) -> bool:
        """Send ``events`` (framed already) as ``steps`` say, the faulty ones framed by ``frame``;
        whether the stream may go on (no abort, no stall)."""
        for step in steps:
            if step.delay:
                await asyncio.sleep(step.delay)
            if step.kind == "chunk":
                writer.write(events[step.index])
                self.stats.frames_sent += 1
            elif step.kind == "malformed":
                writer.write(frame(self.MALFORMED))
            elif step.kind == "oversize":
                writer.write(frame(b"x" * self.faults.oversize_bytes))
            elif step.kind == "abort":
                await writer.drain()
                writer.transport.abort()
                return False
            else:  # stall: silent until the client goes away (or close() aborts it), so the handler ends then
                await writer.drain()
                await until_gone(self._connections[writer])
                return False
            await writer.drain()
        return True


class ReferenceSSEServer(SSEEndpoint):
    """Streams ``text`` (or the given pieces) as OpenAI-compatible SSE to clients presenting ``token``.

    With ``reasoning`` the stream first sends that text as ``reasoning_content`` deltas, as
    DeepSeek's reasoning models do. Use as ``async with ReferenceSSEServer(text) as server:``.
    """

    def __init__(
        self,
        text: str | Sequence[str],
        *,
        chunk_size: int = 64,
        token: str | None = None,
        faults: Faults = Faults(),
        qps: float = 50.0,
        reasoning: str = "",
        ids: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if faults.reorder > 1 or faults.duplicate or faults.drop:
            raise ValueError(
                f"{faults}: reorder, duplicate and drop cannot happen to an SSE body, one ordered byte stream "
                "whose events are numbered by their position; use abort_after, stall_after, malformed_at, "
                "oversize_at, reject_first, delay or jitter"
            )
        super().__init__(token=token, faults=faults, qps=qps, host=host, port=port)
        content = split(text, chunk_size)
        thinking = split(reasoning, chunk_size) if reasoning else []
        self.ids = ids
        self.count = len(thinking) + len(content)
        self._events = [self._event(i, {"reasoning_content": piece}) for i, piece in enumerate(thinking)]
        self._events += [
            self._event(len(thinking) + i, {"content": piece}, "stop" if i == len(content) - 1 else None)
            for i, piece in enumerate(content)
        ]
        usage = {"prompt_tokens": 7, "completion_tokens": self.count, "total_tokens": 7 + self.count}
        self._tail = self._frame(
            self.count, {"id": "chatcmpl-ref", "object": "chat.completion.chunk", "choices": [], "usage": usage}
        )
        self._tail += self._frame(self.count + 1, "[DONE]")

    def __repr__(self) -> str:
        return f"ReferenceSSEServer({self.url if self._server else 'not started'}, {self.count} chunks, {self.faults})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1/chat/completions"

    def _event(self, index: int, delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-ref",
            "object": "chat.completion.chunk",
            "created": 1672531200,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return self._frame(index, chunk)

    def _frame(self, index: int, payload: object) -> bytes:
        data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        return ENCODER.encode(data, id=str(index) if self.ids else None)

    async def _answer(
        self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        if method != "POST" or target not in ("/v1/chat/completions", "/chat/completions"):
            return self._status(writer, "404 Not Found", b'{"error": "not found"}')
        if self._refused(writer, headers):
            return
        number = self.stats.connections
        self.stats.connections += 1
        last = headers.get("last-event-id", "")
        start = int(last) + 1 if last.isdigit() else 0
        self.stats.resumed_from = start
        self._stream_head(writer)
        if await self._play(writer, plan(self.count, self.faults, number, min(start, self.count)), self._events):
            writer.write(self._tail)
            await writer.drain()
