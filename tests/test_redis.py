"""Streams over Redis, on a real Redis: publish, from_redis_stream and relay_sse, with writers and readers
in other processes, a writer killed, and a Redis restarted (a server of the test's own, never the shared one)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from reactivex import Observable
from reactivex import operators as ops

import rxstream
from benchmarks import redis_streams
from rxstream import operators as rxo
from rxstream.protocol._sse import sse_events

from .services import REDIS, missing, redis_prefix  # noqa: F401  (the fixture)
from .support import frame

redis_asyncio = pytest.importorskip("redis.asyncio")
pytestmark = pytest.mark.network
CHILD = str(Path(__file__).with_name("redis_child.py"))


def client(url: str = REDIS.url) -> Any:
    return redis_asyncio.from_url(url)


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, CHILD, *args, stdout=subprocess.PIPE)


async def lines_of(process: asyncio.subprocess.Process, timeout: float) -> list[Any]:
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0
    return [orjson.loads(line) for line in out.splitlines()]


def answer(chunks: int, piece: Callable[[int], str], delay: float = 0.0) -> Observable[Any]:
    """A provider's frames, ``chunks`` of them, one every ``delay`` seconds (read only while demand allows)."""

    async def frames() -> AsyncIterator[bytes]:
        for index in range(chunks):
            if delay:
                await asyncio.sleep(delay)
            yield frame(index, piece(index), index == chunks - 1)

    return rxstream.from_async_iterable(frames())


def published_through(sink: rxstream.StreamSink, *then: Callable[[Any], Any]) -> list[Callable[[Any], Any]]:
    return [rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.publish(sink), *then]


DELTAS = 5000


async def test_every_reader_gets_the_writers_text_exactly_once_whenever_it_starts_and_however_it_reconnects(
    redis_prefix: str,  # noqa: F811
) -> None:
    # As the issue has it: a 5,000-delta answer, 20 reader tasks in 3 processes, each leaving and coming
    # back from its last id 3 times; the server with its faults: reorder, duplicates, a dropped chunk
    # requested again, a connection cut and resumed.
    key = f"{redis_prefix}answer"
    # One reader process starts its tasks within a second of its start, the other within two seconds of
    # the stream's first entry; the third once the writer is done.
    early = [
        await spawn("read", REDIS.url, key, "7", "1", "1", "700", "at-once"),
        await spawn("read", REDIS.url, key, "7", "2", "2", "700", "after-first"),
    ]
    for process in early:
        assert process.stdout is not None
        assert orjson.loads(await asyncio.wait_for(process.stdout.readline(), 30)) == "ready"
    writer = await spawn(
        "write", REDIS.url, key, str(DELTAS), "reorder=8,duplicate=0.05,drop=1,abort_after=1000,delay=0.0002,seed=3"
    )
    [written] = await lines_of(writer, 60)
    late = await spawn("read", REDIS.url, key, "6", "3", "1", "700", "at-once")
    results = [result for process in (*early, late) for result in await lines_of(process, 60) if result != "ready"]
    assert written["chunks"] == DELTAS and written["retries"] >= 1
    assert len(results) == 20
    assert all(result["text"] == written["text"] for result in results)
    assert all(result["numbers_in_order"] and result["reconnects"] == 3 for result in results)
    started_at = sorted(result["published_at_start"] for result in results)
    assert started_at[0] == 0 and started_at[-1] == DELTAS  # before the writer, after it
    assert any(0 < published < DELTAS for published in started_at)  # and during


async def test_readers_of_a_killed_writer_end_typed_after_the_timeout_with_everything_published(
    redis_prefix: str,  # noqa: F811
) -> None:
    key = f"{redis_prefix}answer"
    redis = client()
    writer = await spawn("write", REDIS.url, key, "5000", "delay=0.003")
    received: list[list[str]] = [[] for _ in range(4)]

    async def read(into: list[str]) -> Exception:
        source = rxstream.from_redis_stream(redis, key, writer_timeout=1.5)
        try:
            await source.pipe(ops.map(chunk_text), ops.do_action(into.append))
        except rxstream.StreamError as error:
            return error
        raise AssertionError("the stream of a killed writer completed")

    while not await redis.exists(key):  # the writer's start (imports, its server) is not what is timed
        await asyncio.sleep(0.05)
    readers = asyncio.gather(*(read(into) for into in received))
    while await redis.xlen(key) < 200:
        await asyncio.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    await writer.wait()
    killed_at = time.monotonic()
    errors = await asyncio.wait_for(readers, 15)
    waited = time.monotonic() - killed_at
    published = [fields[b"text"].decode() for _, fields in await redis.xrange(key)]
    assert all(isinstance(error, rxstream.WriterLostError) for error in errors)
    assert all(into == published for into in received)
    assert 1.0 <= waited < 1.5 + 2  # writer_timeout from the last entry read, shortly before the kill
    await redis.aclose()


def chunk_text(entry: rxstream.StreamEntry) -> str:
    return entry.chunk.data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_server(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )


async def until_up(redis: Any) -> None:
    for _ in range(100):
        try:
            await redis.ping()
            return
        except Exception:
            await asyncio.sleep(0.05)
    raise AssertionError("redis-server did not start")


async def test_a_redis_restarted_mid_stream_fails_publish_typed_and_readers_too() -> None:
    # A Redis of the test's own, which it kills and starts again: the shared one is never touched.
    if shutil.which("redis-server") is None:
        missing("no redis-server on PATH to start and restart (Debian's redis-server package)")
    port = free_port()
    server = redis_server(port)
    redis = client(f"redis://127.0.0.1:{port}/0")
    try:
        await until_up(redis)
        sink = rxstream.RedisStreamSink(redis, "answer")
        passed: list[Any] = []
        outcome: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
        answer(2000, lambda i: f"{i} ", delay=0.005).pipe(*published_through(sink)).subscribe(
            passed.append, outcome.set_result, lambda: outcome.set_exception(AssertionError("completed"))
        )
        reader = asyncio.ensure_future(
            rxstream.from_redis_stream(
                redis, "answer", writer_timeout=1.5, retry=rxstream.RetryPolicy(initial=0.05)
            ).pipe(ops.count())
        )
        while len(passed) < 100:
            await asyncio.sleep(0.02)
        server.kill()
        server.wait()
        server = redis_server(port)
        error = await asyncio.wait_for(outcome, 15)
        assert isinstance(error, rxstream.PublishFailedError)
        assert error.published == len(passed)  # each delta that went on was stored; none after
        with pytest.raises((rxstream.WriterLostError, rxstream.ConnectionLostError)):
            await asyncio.wait_for(reader, 15)
    finally:
        server.kill()
        server.wait()
        await redis.aclose()


async def test_a_reader_resumes_after_any_entry_and_after_the_last_ends_at_once(
    redis_prefix: str,  # noqa: F811
) -> None:
    key = f"{redis_prefix}answer"
    redis = client()
    response = await answer(50, lambda i: f"{i} ").pipe(
        *published_through(rxstream.RedisStreamSink(redis, key), rxo.finalize())
    )
    entries: list[rxstream.StreamEntry] = await rxstream.from_redis_stream(redis, key).pipe(ops.to_list())
    assert "".join(entry.chunk.data for entry in entries) == response.text
    assert [entry.chunk.index for entry in entries] == list(range(50)) and entries[-1].chunk.is_final
    for at in (0, 17, 48):
        after: list[rxstream.StreamEntry] = await rxstream.from_redis_stream(redis, key, after=entries[at].id).pipe(
            ops.to_list()
        )
        assert after == entries[at + 1 :]
    started = time.monotonic()
    assert await rxstream.from_redis_stream(redis, key, after=entries[-1].id).pipe(ops.to_list()) == []
    assert time.monotonic() - started < 1
    assert 0 < await redis.ttl(key) <= 3600
    with pytest.raises(ValueError, match="entry id"):
        rxstream.from_redis_stream(redis, key, after="latest")
    await redis.aclose()


async def test_a_writer_that_failed_fails_its_readers_with_what_it_recorded(redis_prefix: str) -> None:  # noqa: F811
    key = f"{redis_prefix}answer"
    redis = client()
    lost = rxstream.ConnectionLostError("wss://example.test", "reset", 4)

    async def frames() -> AsyncIterator[bytes]:
        yield frame(0, "abc")
        yield frame(1, "de")
        raise lost

    with pytest.raises(rxstream.StreamError):
        await rxstream.from_async_iterable(frames()).pipe(
            *published_through(rxstream.RedisStreamSink(redis, key), rxo.finalize())
        )
    texts: list[str] = []
    with pytest.raises(rxstream.WriterFailedError) as failed:
        await rxstream.from_redis_stream(redis, key).pipe(ops.map(chunk_text), ops.do_action(texts.append))
    assert texts == ["abc", "de"]
    assert (failed.value.error_type, failed.value.characters) == ("ConnectionLostError", 5)
    assert str(lost) == failed.value.detail
    await redis.aclose()


async def test_a_reader_behind_the_trimmed_entries_fails_rather_than_miss_them(redis_prefix: str) -> None:  # noqa: F811
    key = f"{redis_prefix}answer"
    redis = client()
    sink = rxstream.RedisStreamSink(redis, key, maxlen=10)
    await answer(2000, lambda i: f"{i} ").pipe(*published_through(sink, rxo.finalize()))
    with pytest.raises(rxstream.InvalidChunkError, match="trimmed"):
        await rxstream.from_redis_stream(redis, key)
    await redis.xadd(f"{key}:other", {"hello": "world"})
    with pytest.raises(rxstream.FrameError, match="not an entry"):
        await rxstream.from_redis_stream(redis, f"{key}:other")
    await redis.aclose()


async def test_the_relay_resumes_after_last_event_id_exactly(redis_prefix: str) -> None:  # noqa: F811
    key = f"{redis_prefix}answer"
    redis = client()
    response = await answer(30, lambda i: f"{i}\n").pipe(
        *published_through(rxstream.RedisStreamSink(redis, key), rxo.finalize())
    )
    whole = list(sse_events([piece async for piece in rxstream.relay_sse(redis, key)]))
    assert [event.event for event in whole] == ["message"] * 29 + ["done"]
    assert "".join(orjson.loads(event.data)["text"] for event in whole) == response.text
    resumed = list(sse_events([piece async for piece in rxstream.relay_sse(redis, key, last_event_id=whole[9].id)]))
    assert resumed == whole[10:]
    await redis.aclose()


class SlowProxy:
    """A TCP proxy to Redis that waits ``delay`` before forwarding each read: a slow Redis."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        target = urlsplit(REDIS.url)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    await asyncio.sleep(self.delay)
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream_reader, upstream_writer = await asyncio.open_connection(target.hostname, target.port or 6379)
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

        self.server = await asyncio.start_server(connected, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{target.path or '/0'}"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_memory_stays_bounded_while_50_mb_go_through_a_slow_redis_to_a_slow_reader(
    redis_prefix: str,  # noqa: F811
) -> None:
    key = f"{redis_prefix}answer"
    piece = "x" * 16_000
    chunks = 50_000_000 // len(piece)

    async def peak(operators: list[Callable[[Any], Any]], alongside: Any = None) -> int:
        tracemalloc.start()
        try:
            response = await answer(chunks, lambda _: piece).pipe(*operators)
            assert len(response.text) == chunks * len(piece)
            del response
            if alongside is not None:
                await alongside
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    async def slow_reader(redis: Any) -> int:
        characters = 0
        entries = rxstream.to_async_iterable(rxstream.from_redis_stream(redis, key, count=64))
        async for entry in entries:
            characters += len(entry.chunk.data)
            if entry.chunk.index % 64 == 0:
                await asyncio.sleep(0.002)
        return characters

    plain = await peak([rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()])
    async with SlowProxy(0.002) as slow_url:
        slow, direct = client(slow_url), client()
        reader = asyncio.ensure_future(slow_reader(direct))
        sink = rxstream.RedisStreamSink(slow, key)
        operators: list[Callable[[Any], Any]] = [
            rxo.parse(),
            rxo.reorder(),
            rxo.backpressure_buffer(),
            rxo.accumulate(),
            rxo.publish(sink, max_batch=64),
        ]
        published = await peak([*operators, rxo.finalize()], reader)
        assert reader.result() == chunks * len(piece)
        await slow.aclose()
        await direct.aclose()
    # The text itself is the same in both; what publish adds is bounded: two batches of 64 deltas of 16 KB
    # (one waiting, one being appended, and its commands encoded), and the reader's XREAD reply of 64.
    assert published - plain < 8_000_000, (plain, published)


async def test_demo_relay_streams_from_the_reference_server_through_redis_to_the_relay(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    port = free_port()
    demo = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "rxstream", "demo", "--relay", "--redis", REDIS.url, "--relay-port", str(port)),
        *("--linger", "2", "--size", "400", "--db", str(tmp_path / "demo.db")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert demo.stderr is not None
    async with asyncio.timeout(30):
        while not (line := (await demo.stderr.readline()).decode()).startswith("open "):
            assert line, "the demo ended without printing the relay's URL"
    key = line.split("key=")[1].strip()
    async with httpx.AsyncClient() as http, http.stream("GET", f"http://127.0.0.1:{port}/streams/{key}") as body:
        assert body.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events([piece async for piece in body.aiter_bytes()]))
    out, _ = await asyncio.wait_for(demo.communicate(), 30)
    assert demo.returncode == 0
    relayed = "".join(orjson.loads(event.data)["text"] for event in events)
    assert events[-1].event == "done" and [orjson.loads(event.data)["n"] for event in events] == list(
        range(len(events))
    )
    assert out.decode().startswith(relayed + "\n")  # exactly the text the demo showed live, then its stats
    redis = client()
    await redis.delete(key)
    await redis.aclose()


async def test_the_benchmarks_contenders_through_redis_agree(redis_prefix: str) -> None:  # noqa: F811
    writer, reader = client(), client()
    ours = await redis_streams.through_rxstream(writer, reader, f"{redis_prefix}ours", 600)
    hand = await redis_streams.hand_loop(writer, reader, f"{redis_prefix}hand", 600)
    assert ours == hand == redis_streams.PIECE * 600
    await writer.aclose()
    await reader.aclose()


async def test_a_reader_disposed_from_inside_on_next_stops_without_a_retry(
    redis_prefix: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = f"{redis_prefix}answer"
    redis = client()
    await answer(20, lambda i: f"{i} ").pipe(*published_through(rxstream.RedisStreamSink(redis, key), rxo.finalize()))
    first: list[rxstream.StreamEntry] = await rxstream.from_redis_stream(redis, key).pipe(ops.take(3), ops.to_list())
    await asyncio.sleep(0.1)
    assert [entry.chunk.index for entry in first] == [0, 1, 2]
    assert not [record for record in caplog.records if record.name == "rxstream"]
    await redis.aclose()


async def test_the_relay_ends_a_failed_stream_with_a_failed_event_naming_the_writers_error(
    redis_prefix: str,  # noqa: F811
) -> None:
    key = f"{redis_prefix}answer"
    redis = client()

    async def frames() -> AsyncIterator[bytes]:
        yield frame(0, "abc")
        raise rxstream.ConnectionLostError("wss://example.test", "reset", 4)

    with pytest.raises(rxstream.StreamError):
        await rxstream.from_async_iterable(frames()).pipe(
            *published_through(rxstream.RedisStreamSink(redis, key), rxo.finalize())
        )
    events = list(sse_events([piece async for piece in rxstream.relay_sse(redis, key)]))
    assert [event.event for event in events] == ["message", "failed"]
    assert orjson.loads(events[1].data)["error_type"] == "ConnectionLostError"
    await redis.aclose()
