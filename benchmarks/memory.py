"""3. Peak memory for a 15 MB response, and 5. flat memory while a slow consumer holds 100,000 chunks back."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from collections.abc import AsyncIterator

import rxstream
from rxstream import operators as rxo

from .loopback import ServerProcess
from .measure import Result, progress

CHUNK = 1024  # characters per chunk: a response of 15 MB arrives in ~15,000 frames


def peak_rss() -> int:
    """The process's peak resident size, from /proc: VmHWM starts afresh at exec, whereas
    getrusage's ru_maxrss keeps the forking parent's peak, which would hide the child's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def _response_memory(uri: str) -> dict[str, int]:
    # Everything imported first: rxstream imports its WebSocket source (and websockets) when it
    # is first used. Growth is the peak after the stream against the resident size now; for a
    # tiny response the start-up peak can hide it, which is why the quick run reads ~0.
    stream = rxstream.stream
    before = current_rss()
    response = await stream(uri, request={}, stream_timeout=60)
    return {
        "growth": max(peak_rss() - before, 0),
        "size": len(response.text.encode()),
        "characters": len(response.text),
    }


async def response_memory(size: int) -> Result:
    progress(f"memory: peak RSS growth for a {size / 1e6:.0f} MB response, in a fresh process")
    async with ServerProcess(size, CHUNK) as server:
        code = f"import asyncio, json; from {__name__} import _response_memory; print(json.dumps(asyncio.run(_response_memory({server.uri!r}))))"
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=subprocess.PIPE)
        out, _ = await child.communicate()
    figures = json.loads(out)
    # The text mixes English and Chinese: CPython holds it at 2 bytes a character, more than its UTF-8 size.
    return Result(
        f"memory: peak RSS growth / response size ({CHUNK}-character chunks)",
        figures["growth"] / figures["size"],
        2.0,
        higher_is_better=False,
        detail=f"{figures['growth'] / 1e6:.1f} MB for {figures['size'] / 1e6:.1f} MB of UTF-8 ({figures['characters'] / 1e6:.1f} M characters)",
    )


async def slow_consumer(held_back: int) -> Result:
    progress(f"slow consumer: {held_back:,} chunks held back by demand")
    produced = 0
    total = held_back + 1000

    async def frames() -> AsyncIterator[bytes]:
        nonlocal produced
        piece = "x" * 100
        for index in range(total):
            produced += 1
            yield b'{"chunk":{"index":%d,"data":"%s","is_final":false}}' % (index, piece.encode())

    stream = rxstream.from_async_iterable(frames()).pipe(rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(5))
    iterator = rxstream.to_async_iterable(stream)
    lead = 0
    rss = []
    for taken in range(1, 1001):
        await anext(iterator)
        for _ in range(2):
            await asyncio.sleep(0)  # the consumer is busy; the producer gets every chance to run
        lead = max(lead, produced - taken)
        if taken in (100, 1000):
            rss.append(peak_rss())
    await iterator.aclose()
    growth = rss[1] - rss[0]
    return Result(
        "slow consumer: producer lead over the consumer (chunks)",
        lead,
        6,
        higher_is_better=False,
        detail=f"{total - produced:,} of {total:,} chunks held back unproduced; peak RSS grew {growth / 1e6:.2f} MB over 900 taken",
        extra={"rss_growth_bytes": growth},
    )
