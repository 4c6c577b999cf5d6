"""Run by tests/test_redis.py in child processes: a writer publishing the reference server's stream to
Redis, or reader tasks that start at random moments and reconnect from their last id."""

from __future__ import annotations

import asyncio
import random
import sys

import orjson
import redis.asyncio

import rxstream
from rxstream import operators as rxo
from rxstream.server import Faults, ReferenceServer, generate


async def write(url: str, key: str, chunks: int, faults: str) -> None:
    """Stream ``chunks`` chunks from the reference server, with ``faults``, publishing each delta; print the text."""
    client = redis.asyncio.from_url(url)
    text = generate(chunks * 8, seed=7)
    async with ReferenceServer(text, chunk_size=8, faults=Faults.parse(faults)) as server:
        source = rxstream.from_websocket(server.uri, retry=rxstream.RetryPolicy(initial=0.05))
        response = await source.pipe(
            rxo.parse(),
            rxo.reorder(),
            rxo.backpressure_buffer(),
            rxo.accumulate(),
            rxo.publish(rxstream.RedisStreamSink(client, key)),
            rxo.finalize(),
        )
    await client.aclose()
    print(orjson.dumps({"text": response.text, "chunks": response.chunks, "retries": response.stats.retries}).decode())


async def read_with_reconnects(
    client: redis.asyncio.Redis, key: str, rng: random.Random, window: float, most: int, after_first: bool
) -> dict[str, object]:
    """Start within ``window`` seconds (of the stream's first entry, with ``after_first``), read to the end,
    leaving and coming back from the last id 3 times."""
    while after_first and not await client.exists(key):
        await asyncio.sleep(0.01)
    await asyncio.sleep(rng.uniform(0, window))
    published_at_start = await client.xlen(key)
    texts: list[str] = []
    numbers: list[int] = []
    last_id = "0"
    reconnects = 0
    while True:
        leave_after = rng.randint(1, most) if reconnects < 3 else -1
        entries = rxstream.to_async_iterable(rxstream.from_redis_stream(client, key, after=last_id))
        finished = True
        async for entry in entries:
            texts.append(entry.chunk.data)
            numbers.append(entry.chunk.index)
            last_id = entry.id
            leave_after -= 1
            if leave_after == 0 and not entry.chunk.is_final:
                finished = False
                break
        await entries.aclose()
        if finished:
            return {
                "text": "".join(texts),
                "numbers_in_order": numbers == list(range(len(numbers))),
                "reconnects": reconnects,
                "published_at_start": published_at_start,
            }
        reconnects += 1


async def read(url: str, key: str, tasks: int, seed: int, window: float, most: int, after_first: bool) -> None:
    client = redis.asyncio.from_url(url)
    rng = random.Random(seed)
    await client.ping()
    print(orjson.dumps("ready").decode(), flush=True)  # imported and connected: the random moments start now
    readers = [
        read_with_reconnects(client, key, random.Random(rng.random()), window, most, after_first) for _ in range(tasks)
    ]
    for result in await asyncio.gather(*readers):
        print(orjson.dumps(result).decode())
    await client.aclose()


if __name__ == "__main__":
    command, url, key, *rest = sys.argv[1:]
    if command == "write":
        asyncio.run(write(url, key, int(rest[0]), rest[1]))
    else:
        asyncio.run(read(url, key, int(rest[0]), int(rest[1]), float(rest[2]), int(rest[3]), rest[4] == "after-first"))
