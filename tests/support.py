"""Helpers shared by the tests: building protocol frames and running observables to the end (rxstream.testing's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from reactivex import Observable
from websockets.utils import accept_key

import rxstream
from rxstream import Response, StreamError
from rxstream import operators as rxo
from rxstream.operators._backpressure_buffer import Overflow
from rxstream.operators._finalize import Timer
from rxstream.protocol._sse import SSEEvent, sse_events
from rxstream.testing import Outcome as Outcome
from rxstream.testing import assert_equal_outcomes, outcome_of

# rxstream.testing's, public: the fused-vs-piped properties compare outcomes exactly (their timers are their own)
assert_same_outcome = assert_equal_outcomes
run = outcome_of

FiveOperators = Callable[[Observable[Any]], Observable[rxstream.Response]]
# Recorded real provider streams, vendored with their licences and provenance (fixtures/real-streams/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "real-streams"


def frame(index: int, data: str = "", is_final: bool = False, **extra: Any) -> bytes:
    """One protocol frame; ``extra`` fields go into the chunk."""
    return orjson.dumps(
        {"chunk": {"index": index, "data": data, "is_final": is_final, **extra}, "timestamp": 1672531200}
    )


def frames_for(pieces: Sequence[str], order: Iterable[int] | None = None) -> list[bytes]:
    """Frames carrying ``pieces`` as chunks 0..n-1 (the last final), sent in ``order``."""
    last = len(pieces) - 1
    return [frame(i, pieces[i], i == last) for i in (range(len(pieces)) if order is None else order)]


def decode(raw: bytes, cuts: Iterable[int] = ()) -> list[SSEEvent]:
    """The events of an SSE body read in pieces cut at ``cuts``, to its end."""
    bounds = [0, *sorted(cuts), len(raw)]
    return list(sse_events(raw[start:end] for start, end in zip(bounds, bounds[1:], strict=False)))


def partial_of(error: BaseException | None) -> Response:
    """The partial response on the error a stream ended with (every StreamError from finalize has one)."""
    assert isinstance(error, StreamError) and error.partial is not None, repr(error)
    return error.partial


@asynccontextmanager
async def loopback(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A raw asyncio server on 127.0.0.1 calling ``handle`` per connection, which it closes after:
    its ``http://host:port``. A client that leaves mid-answer is no error."""

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except ConnectionError:
            pass  # the client left
        finally:
            writer.close()

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def send_in_pieces(writer: asyncio.StreamWriter, body: bytes, size: int, *, chunked: bool) -> None:
    """``body`` in writes of ``size`` bytes (HTTP chunks when ``chunked``, without the last, empty one),
    so that events are cut across reads as a network cuts them."""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        await writer.drain()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """An HTTP/1.1 request: its request line, its headers (names in lower case), its body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:] if line)
    }
    return head[0], headers, await reader.readexactly(int(headers.get("content-length", "0")))


def piped(
    window: int = 64, max_pending: int = 5, overflow: Overflow = "block", timer: Timer = time.perf_counter
) -> FiveOperators:
    """The five operators piped one by one, as ``rxstream.pipeline`` would fuse them with the same arguments."""

    def apply(source: Observable[Any]) -> Observable[rxstream.Response]:
        return source.pipe(
            rxo.parse(),
            rxo.reorder(window),
            rxo.backpressure_buffer(max_pending, overflow),
            rxo.accumulate(),
            rxo.finalize(timer),
        )

    return apply


def fused(
    window: int = 64, max_pending: int = 5, overflow: Overflow = "block", timer: Timer = time.perf_counter
) -> FiveOperators:
    """``rxstream.pipeline``: the five operators fused, with the fast path in front."""
    return rxstream.pipeline(window, max_pending, overflow, timer)


async def websocket_upgrade(reader: asyncio.StreamReader) -> bytes:
    """Read a client's WebSocket handshake and give the 101 answer to it, for a raw asyncio peer
    that writes the answer itself (with what it sends next, or in pieces, as it likes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key:")
    )
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n"
    )


class Valve(rxstream.Stage[Any, Any]):
    """A consumer stage that passes everything on and publishes ``demand`` to the stages above it,
    for a test to open and close (a demand never ready: a consumer that takes nothing)."""

    def __init__(self, downstream: Any, shared: rxstream.Shared, demand: rxstream.Demand) -> None:
        super().__init__(downstream, shared)
        self.demand = demand

    @property
    def upstream_demand(self) -> rxstream.Demand:
        return self.demand

    def on_next(self, item: Any) -> None:
        self.emit(item)


def valve(demand: rxstream.Demand) -> rxstream.Operator[Any, Any]:
    """A consumer below the operators before it, ready when ``demand`` is."""
    return rxstream.Operator(lambda downstream, shared: Valve(downstream, shared, demand))
