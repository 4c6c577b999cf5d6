"""2. Over loopback, and 4. at scale: the server in its own process, sending as fast as it can."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections import deque
from types import TracebackType
from urllib.parse import urlsplit

from reactivex import operators as ops
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import rxstream
from rxstream import operators as rxo
from rxstream.operators import Delta

from .measure import Result, progress


class ServerProcess:
    """``rxstream serve`` in a child process, on a free loopback port; ``options`` such as ``--responses``."""

    def __init__(self, size: int, chunk_size: int, *options: str) -> None:
        self.args = ["serve", "--port", "0", "--size", str(size), "--chunk-size", str(chunk_size), "--qps", "1000000"]
        self.args += options
        self.uri = ""

    async def __aenter__(self) -> ServerProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rxstream", *self.args, stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        banner = (await asyncio.wait_for(self.process.stdout.readline(), 60)).decode()
        self.uri = banner.split(" on ")[1].split(" ")[0]
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.process.terminate()
        await self.process.wait()


async def bare_loop(uri: str) -> int:
    """The simplest loop a user could write: websockets' ``async for``, doing nothing."""
    count = 0
    # Under load (1,000 handshakes at once) the server may have streamed and closed before the
    # request goes out, having waited for it; the frames it sent are read all the same.
    async with connect(uri, compression=None, max_size=2**24, open_timeout=60, close_timeout=60) as websocket:
        with contextlib.suppress(ConnectionClosed):
            await websocket.send("{}")
        async for _ in websocket:
            count += 1
    return count


# A client's handshake and its request, a masked text frame of "{}" (a zero mask leaves it as it is).
HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
REQUEST = b"\x81\x82\x00\x00\x00\x00{}"
CLOSE = b"\x88\x80\x00\x00\x00\x00"


async def raw_asyncio(uri: str) -> int:
    """The floor: asyncio streams, the handshake and the frame headers read by hand, the frames counted."""
    parts = urlsplit(uri)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(HANDSHAKE.format(path=parts.path, host=parts.netloc).encode() + REQUEST)
    await reader.readuntil(b"\r\n\r\n")
    count = 0
    while True:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length >= 126:
            length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8))
        await reader.readexactly(length)
        if head[0] & 0x0F == 8:  # close
            break
        count += 1
    writer.write(CLOSE)
    writer.close()
    return count


async def full_pipeline(uri: str) -> int:
    response = await rxstream.stream(uri, request={})
    return response.chunks


async def loopback(frames: int, repetitions: int) -> Result:
    progress(f"over loopback, {frames:,} frames of 64 characters")
    async with ServerProcess(frames * 64, 64) as server:
        rates: dict[str, list[float]] = {"bare": [], "pipeline": []}
        for _ in range(repetitions):
            for name, client in (("bare", bare_loop), ("pipeline", full_pipeline)):
                started = time.perf_counter()
                count = await client(server.uri)
                rates[name].append(count / (time.perf_counter() - started))
                assert count == frames, f"{name} received {count} of {frames} frames"
    bare, pipeline = statistics.median(rates["bare"]), statistics.median(rates["pipeline"])
    return Result(
        "loopback: from_websocket pipeline vs bare websockets loop",
        pipeline / bare,
        1.0,
        detail=f"{pipeline:,.0f} vs {bare:,.0f} frames/s",
        extra={"pipeline_frames_per_second": pipeline, "bare_frames_per_second": bare},
    )


async def timed_stream(uri: str, latencies: list[float]) -> int:
    """The full pipeline, noting for every chunk the time from its frame leaving the socket to its delta."""
    arrivals: deque[float] = deque()
    clock = time.perf_counter

    def arrived(_: bytes) -> None:
        arrivals.append(clock())

    def delivered(_: Delta) -> None:
        latencies.append(clock() - arrivals.popleft())

    response: rxstream.Response = await rxstream.from_websocket(uri, request={}).pipe(
        ops.do_action(arrived),
        rxo.parse(),
        rxo.reorder(),
        rxo.backpressure_buffer(),
        rxo.accumulate(),
        ops.do_action(delivered),
        rxo.finalize(),
    )
    return response.chunks


async def scale(streams: int, frames_each: int, repetitions: int) -> list[Result]:
    """Aggregate throughput of ``streams`` concurrent streams against one stream as long as a fifth
    of them together, both through ``rxstream.stream``; then the latency each chunk spends in the
    pipeline, in a pass of its own so that timing every chunk does not weigh on the throughput."""
    single = frames_each * streams // 5
    progress(f"scale: 1 stream of {single:,} frames, then {streams} concurrent of {frames_each}")
    rates: dict[str, list[float]] = {"one": [], "many": []}
    cpu: dict[str, list[float]] = {
        "frame": [],
        "stream": [],
    }  # the client's CPU seconds: a frame of the one, a stream of the many
    latencies: list[float] = []
    async with ServerProcess(frames_each * 64, 64) as small, ServerProcess(single * 64, 64) as big:
        for _ in range(repetitions):
            started, cpu_started = time.perf_counter(), time.process_time()
            assert await full_pipeline(big.uri) == single
            rates["one"].append(single / (time.perf_counter() - started))
            cpu["frame"].append((time.process_time() - cpu_started) / single)
            started, cpu_started = time.perf_counter(), time.process_time()
            counts = await asyncio.gather(*(full_pipeline(small.uri) for _ in range(streams)))
            rates["many"].append(sum(counts) / (time.perf_counter() - started))
            cpu["stream"].append((time.process_time() - cpu_started) / streams)
            assert sum(counts) == streams * frames_each
        counts = await asyncio.gather(*(timed_stream(small.uri, latencies) for _ in range(streams)))
    assert sum(counts) == streams * frames_each == len(latencies)
    one, many = statistics.median(rates["one"]), statistics.median(rates["many"])
    # What a stream costs beyond its frames (connecting, the handshakes, closing, collecting its
    # garbage): the CPU of one of the many, less its frames at the one stream's CPU per frame.
    per_frame, per_stream = statistics.median(cpu["frame"]), statistics.median(cpu["stream"])
    per_connection = per_stream - frames_each * per_frame
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    return [
        Result(
            f"scale: {streams} concurrent streams vs one, aggregate frames/s",
            many / one,
            0.8,
            detail=(
                f"{many:,.0f} vs {one:,.0f} frames/s; client CPU {per_stream * 1000:.2f} ms a stream of {frames_each},"
                f" {per_connection * 1000:.2f} ms of it beyond its frames ({per_frame * 1e6:.2f} µs a frame)"
            ),
            extra={
                "many_frames_per_second": many,
                "one_frames_per_second": one,
                "cpu_seconds_per_frame": per_frame,
                "cpu_seconds_per_stream": per_stream,
                "cpu_seconds_per_connection": per_connection,
            },
        ),
        Result(
            "scale: p99 latency added per chunk (ms)",
            p99,
            1.0,
            higher_is_better=False,
            detail=f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, over {streams} concurrent streams",
            extra={"p50_ms": p50, "p99_ms": p99},
        ),
    ]


async def overhead(streams: int, frames_each: int, repetitions: int) -> list[Result]:
    """What a WebSocket stream costs beyond its frames, in client CPU, for rxstream.stream, a bare
    websockets loop and the raw asyncio floor: a stream of ``streams`` at once, less its frames at
    the CPU a frame of one long stream (``streams * frames_each / 5`` frames) of the same client."""
    single = streams * frames_each // 5
    clients = {"rxstream": full_pipeline, "websockets": bare_loop, "raw": raw_asyncio}
    progress(f"WebSocket: what a stream costs beyond its frames, {streams} at once × {frames_each}, 3 clients")
    per_frame: dict[str, list[float]] = {name: [] for name in clients}
    per_stream: dict[str, list[float]] = {name: [] for name in clients}
    async with ServerProcess(frames_each * 64, 64) as small, ServerProcess(single * 64, 64) as big:
        for _ in range(repetitions):
            for name, client in clients.items():
                started = time.process_time()
                assert await client(big.uri) == single, f"{name} lost frames"
                per_frame[name].append((time.process_time() - started) / single)
                started = time.process_time()
                counts = await asyncio.gather(*(client(small.uri) for _ in range(streams)))
                per_stream[name].append((time.process_time() - started) / streams)
                assert sum(counts) == streams * frames_each, f"{name} lost frames"
    beyond = {
        name: statistics.median(per_stream[name]) - frames_each * statistics.median(per_frame[name]) for name in clients
    }
    spent = ", ".join(
        f"{name} {beyond[name] * 1000:.2f} ms ({statistics.median(per_frame[name]) * 1e6:.2f} µs a frame)"
        for name in clients
    )
    return [
        Result(
            f"WebSocket, {streams} streams × {frames_each}: cost beyond the frames, rxstream ÷ bare websockets",
            beyond["rxstream"] / beyond["websockets"],
            1.2,
            higher_is_better=False,
            detail=f"{spent}; the raw asyncio floor ÷ rxstream {beyond['raw'] / beyond['rxstream']:.2f}",
            extra={f"{name}_seconds_beyond_frames": value for name, value in beyond.items()},
        )
    ]
