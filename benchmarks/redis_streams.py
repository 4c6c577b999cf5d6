"""15. Through Redis: publish → Redis Stream → from_redis_stream against a hand-written redis-py XADD/XREAD
loop on the same server, and the latency a delta gains on the way from the provider's frame to a reader.

Needs a Redis (RXSTREAM_BENCH_REDIS, default redis://127.0.0.1:6379/0) and the rxstream[redis] extra;
without them the rows are left out, as the store rows are without PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo

from .measure import Result, progress

REDIS_URL = os.environ.get("RXSTREAM_BENCH_REDIS", "redis://127.0.0.1:6379/0")
BATCH = 256  # the hand loop's XADD pipeline and XREAD COUNT, as publish's max_batch and the source's count
PIECE = "partial text, 部分文本 " * 4  # 64 characters


def chunks(count: int) -> list[rxstream.Chunk]:
    return [rxstream.Chunk(index, PIECE, index == count - 1) for index in range(count)]


def chunk_of(entry: rxstream.StreamEntry) -> rxstream.Chunk:
    return entry.chunk


async def through_rxstream(redis: Any, reader_redis: Any, key: str, count: int) -> str:
    """publish on one side, from_redis_stream on the other, at once: the text the reader made."""
    sink = rxstream.RedisStreamSink(redis, key)
    write = rxstream.from_frames(chunks(count)).pipe(rxo.accumulate(), rxo.publish(sink), rxo.finalize())
    read = rxstream.from_redis_stream(reader_redis, key).pipe(ops.map(chunk_of), rxo.accumulate(), rxo.finalize())
    written, got = await asyncio.gather(write, read)
    assert written.text == got.text
    return got.text


async def hand_loop(redis: Any, reader_redis: Any, key: str, count: int) -> str:
    """What a user would write with redis-py alone: pipelined XADDs, and an XREAD BLOCK loop to the last number."""

    async def write() -> None:
        for start in range(0, count, BATCH):
            pipe = redis.pipeline(transaction=False)
            for number in range(start, min(start + BATCH, count)):
                pipe.xadd(key, {"n": number, "text": PIECE}, maxlen=100_000, approximate=True)
            await pipe.execute()

    async def read() -> str:
        texts: list[str] = []
        last = "0"
        while True:
            for _, entries in await reader_redis.xread({key: last}, count=BATCH, block=1000):
                for entry_id, fields in entries:
                    texts.append(fields[b"text"].decode())
                    last = entry_id
                    if int(fields[b"n"]) == count - 1:
                        return "".join(texts)

    _, text = await asyncio.gather(write(), read())
    return text


async def rates(count: int, repetitions: int) -> dict[str, float]:
    """Deltas a second of each contender, medians over ``repetitions``, run in turn on fresh keys."""
    import redis.asyncio

    writer, reader = redis.asyncio.from_url(REDIS_URL), redis.asyncio.from_url(REDIS_URL)
    contenders: dict[str, Callable[[Any, Any, str, int], Awaitable[str]]] = {
        "rxstream": through_rxstream,
        "hand": hand_loop,
    }
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for _ in range(repetitions):
            for name, run in contenders.items():
                key = f"rxstream-bench:{uuid.uuid4().hex}"
                started = time.perf_counter()
                text = await run(writer, reader, key, count)
                seconds[name].append(time.perf_counter() - started)
                await writer.delete(key)
                assert len(text) == count * len(PIECE)
    finally:
        await writer.aclose()
        await reader.aclose()
    return {name: count / statistics.median(values) for name, values in seconds.items()}


def frame_of(index: int, count: int) -> bytes:
    final = b"true" if index == count - 1 else b"false"
    return b'{"chunk": {"index": %d, "data": "%s", "is_final": %s}}' % (index, PIECE.encode(), final)


async def paced(count: int, interval: float) -> AsyncIterator[bytes]:
    """A provider's frames at its pace: the writer idle between them."""
    for index in range(count):
        await asyncio.sleep(interval)
        yield frame_of(index, count)


async def latencies(count: int, interval: float) -> dict[str, list[float]]:
    """Seconds from each frame reaching the writer to its delta reaching a reader: through rxstream
    (publish before finalize, from_redis_stream's on_next) and through a hand loop (an XADD a frame,
    an XREAD BLOCK loop), one after the other on fresh keys."""
    import redis.asyncio

    writer, reader = redis.asyncio.from_url(REDIS_URL), redis.asyncio.from_url(REDIS_URL)
    keys = [f"rxstream-bench:{uuid.uuid4().hex}" for _ in range(2)]
    times: dict[str, tuple[list[float], list[float]]] = {"rxstream": ([], []), "hand": ([], [])}
    clock = time.perf_counter
    sent, received = times["rxstream"]
    publishing = rxstream.from_async_iterable(paced(count, interval)).pipe(
        ops.do_action(lambda _: sent.append(clock())),
        rxo.parse(),
        rxo.reorder(),
        rxo.backpressure_buffer(),
        rxo.accumulate(),
        rxo.publish(rxstream.RedisStreamSink(writer, keys[0])),
        rxo.finalize(),
    )
    reading = rxstream.from_redis_stream(reader, keys[0]).pipe(ops.do_action(lambda _: received.append(clock())))

    async def write_by_hand() -> None:
        async for frame in paced(count, interval):
            times["hand"][0].append(clock())
            await writer.xadd(keys[1], {"frame": frame}, maxlen=100_000, approximate=True)

    async def read_by_hand() -> None:
        last = "0"
        while len(times["hand"][1]) < count:
            reply: Any = await reader.xread({keys[1]: last}, count=BATCH, block=1000)
            for _, entries in reply:
                for entry_id, _ in entries:
                    times["hand"][1].append(clock())
                    last = entry_id

    try:
        await asyncio.gather(publishing, reading)
        await asyncio.gather(write_by_hand(), read_by_hand())
    finally:
        await writer.delete(*keys)
        await writer.aclose()
        await reader.aclose()
    return {
        name: sorted(got - put for put, got in zip(put_at, got_at, strict=True))
        for name, (put_at, got_at) in times.items()
    }


def percentiles(delays: list[float]) -> tuple[float, float]:
    """p50 and p99, in milliseconds."""
    return delays[len(delays) // 2] * 1000, delays[int(len(delays) * 0.99)] * 1000


async def run(count: int, latency_count: int, repetitions: int) -> list[Result]:
    progress(f"through Redis: {count:,} deltas published and read at once, then {latency_count:,} a millisecond apart")
    try:
        measured = await rates(count, repetitions)
        delays = await latencies(latency_count, 0.001)
    except (ImportError, OSError) as error:  # no redis-py, or no server: the rows are left out, saying why
        progress(
            f"through Redis: left out ({type(error).__name__}: {error}); set RXSTREAM_BENCH_REDIS to a server's URL,"
            " and pip install 'rxstream[redis]'"
        )
        return []
    ours, hand = measured["rxstream"], measured["hand"]
    (p50, p99), (hand_p50, hand_p99) = percentiles(delays["rxstream"]), percentiles(delays["hand"])
    return [
        Result(
            "through Redis: publish → from_redis_stream vs redis-py XADD/XREAD loop",
            ours / hand,
            0.8,
            detail=f"{ours:,.0f} vs {hand:,.0f} deltas/s, writer and reader at once",
            extra={"rxstream_deltas_per_second": ours, "hand_deltas_per_second": hand},
        ),
        Result(
            "through Redis: p99 latency added per delta (ms)",
            p99,
            10.0,  # two round trips to Redis and a wake-up: about a millisecond on a quiet machine
            higher_is_better=False,
            detail=(
                f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, from the writer's frame to a reader's on_next; "
                f"a hand loop's (an XADD a frame, XREAD BLOCK) p50 {hand_p50:.3f} ms, p99 {hand_p99:.3f} ms"
            ),
            extra={"p50_ms": p50, "p99_ms": p99, "hand_p50_ms": hand_p50, "hand_p99_ms": hand_p99},
        ),
    ]
