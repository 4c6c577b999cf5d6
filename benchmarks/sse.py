"""9-11. Over SSE (issue 20): rxstream's default calls against httpx-sse on a shared client, the loop an
application writes (orjson on each event, the text joined), from ``rxstream serve --sse`` / ``--responses``
in its own process, so that its CPU counts for no one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial

import httpx
import orjson

import rxstream
from rxstream.protocol._sse import sse_events
from rxstream.server import generate
from rxstream.transport._client import LIMITS

from .loopback import ServerProcess
from .measure import Result, Timing, async_timings, medians, progress

CHUNK = 8  # characters a text delta: a token or two, as the APIs send them
CHAT = rxstream.chat_request("bench", "hi")
RESPONSES = rxstream.responses_request("bench", "hi")


def httpx_sse_installed(row: str) -> bool:
    try:
        import httpx_sse  # noqa: F401
    except ImportError:
        progress(f"{row}: skipped, httpx-sse (the peer) is not installed: pip install 'rxstream[test]'")
        return False
    return True


def shared_client() -> httpx.AsyncClient:
    """The client an application keeps for its calls, with rxstream's default's limits and timeouts."""
    return httpx.AsyncClient(limits=LIMITS, timeout=httpx.Timeout(30.0, read=None))


async def httpx_sse_chat(client: httpx.AsyncClient, url: str) -> str:
    """httpx-sse's loop over a chat completion: orjson on each event, the deltas' content joined."""
    from httpx_sse import aconnect_sse  # the peer, imported when its rows run

    parts: list[str] = []
    async with aconnect_sse(client, "POST", url, json=CHAT) as source:
        async for event in source.aiter_sse():
            if event.data == "[DONE]":
                break
            choices = orjson.loads(event.data)["choices"]
            if choices:
                parts.append(choices[0]["delta"].get("content") or "")
    return "".join(parts)


async def split_chat(client: httpx.AsyncClient, url: str) -> str:
    """The floor: the body split on blank lines (the reference server sends no CR), orjson, the text joined."""
    parts: list[str] = []
    rest = b""
    async with client.stream("POST", url, json=CHAT) as response:
        async for data in response.aiter_bytes():
            *events, rest = (rest + data).split(b"\n\n")
            for event in events:
                start = event.find(b"data: ")  # after the id line; none in a comment
                payload = event[start + 6 :]
                if start >= 0 and payload != b"[DONE]":
                    choices = orjson.loads(payload)["choices"]
                    if choices:
                        parts.append(choices[0]["delta"].get("content") or "")
    return "".join(parts)


async def httpx_sse_responses(client: httpx.AsyncClient, url: str) -> str:
    """httpx-sse's loop over a Responses stream: orjson on each event, the output text deltas joined."""
    from httpx_sse import aconnect_sse  # the peer, imported when its rows run

    parts: list[str] = []
    async with aconnect_sse(client, "POST", url, json=RESPONSES) as source:
        async for event in source.aiter_sse():
            payload = orjson.loads(event.data)
            if payload["type"] == "response.output_text.delta":
                parts.append(payload["delta"])
            elif payload["type"] == "response.completed":
                break
    return "".join(parts)


async def rxstream_chat(url: str, client: httpx.AsyncClient | None = None) -> str:
    return (await rxstream.stream_sse(url, request=CHAT, client=client)).text


async def rxstream_responses(url: str) -> str:
    return (await rxstream.stream_responses(url, request=RESPONSES)).text


async def gathered(call: Callable[[], Awaitable[str]], streams: int) -> list[str]:
    return list(await asyncio.gather(*(call() for _ in range(streams))))


def spread(timing: Timing) -> str:
    return f"{timing.wall_low:.2f}-{timing.wall_high:.2f} s"


async def one_stream(events: int, repetitions: int) -> list[Result]:
    """One chat completion of ``events`` text deltas: stream_sse against the httpx-sse loop and the split floor."""
    if not httpx_sse_installed("SSE, one stream"):
        return []
    async with ServerProcess(events * CHUNK, CHUNK, "--sse") as server, shared_client() as client:
        progress(f"SSE, 1 stream of {events:,} events: stream_sse vs httpx-sse vs split + orjson")
        expected = await httpx_sse_chat(client, server.uri)
        for check in (rxstream_chat(server.uri), split_chat(client, server.uri)):
            assert await check == expected, "the SSE contenders disagree"
        timings = await async_timings(
            {
                "rxstream": partial(rxstream_chat, server.uri),
                "httpx_sse": partial(httpx_sse_chat, client, server.uri),
                "split": partial(split_chat, client, server.uri),
            },
            repetitions,
        )
    count = events + 2  # the usage event and [DONE]
    ours, theirs, floor = timings["rxstream"], timings["httpx_sse"], timings["split"]
    return [
        Result(
            f"SSE, 1 stream of {events:,} events: stream_sse vs the httpx-sse loop, events/s",
            theirs.wall / ours.wall,
            1.0,
            detail=(
                f"{count / ours.wall:,.0f} vs {count / theirs.wall:,.0f} events/s (walls {spread(ours)} vs"
                f" {spread(theirs)}); client CPU {ours.cpu / count * 1e6:.1f} vs {theirs.cpu / count * 1e6:.1f}"
                f" µs an event, split + orjson {floor.cpu / count * 1e6:.1f}"
            ),
            extra={f"{name}_{kind}": getattr(t, kind) for name, t in timings.items() for kind in ("wall", "cpu")},
        )
    ]


async def concurrent(streams: int, events: int, repetitions: int) -> list[Result]:
    """``streams`` chat completions at once: default stream_sse calls against httpx-sse on one shared client."""
    if not httpx_sse_installed("SSE, concurrent streams"):
        return []
    async with ServerProcess(events * CHUNK, CHUNK, "--sse") as server, shared_client() as client:
        progress(f"SSE, {streams} concurrent streams of {events} events: stream_sse vs httpx-sse (shared client)")
        expected = await httpx_sse_chat(client, server.uri)
        assert await gathered(partial(rxstream_chat, server.uri), 2) == [expected] * 2, "the contenders disagree"
        timings = await async_timings(
            {
                "rxstream": partial(gathered, partial(rxstream_chat, server.uri), streams),
                "httpx_sse": partial(gathered, partial(httpx_sse_chat, client, server.uri), streams),
                "client_given": partial(gathered, partial(rxstream_chat, server.uri, client), streams),
            },
            repetitions,
        )
    ours, theirs, given = timings["rxstream"], timings["httpx_sse"], timings["client_given"]
    total = streams * (events + 2)
    extra = {f"{name}_{kind}": getattr(t, kind) for name, t in timings.items() for kind in ("wall", "cpu")}
    return [
        Result(
            f"SSE, {streams} concurrent streams × {events}: default stream_sse vs httpx-sse, events/s",
            theirs.wall / ours.wall,
            1.0,
            detail=(
                f"{total / ours.wall:,.0f} vs {total / theirs.wall:,.0f} events/s (walls {spread(ours)} vs"
                f" {spread(theirs)}); with client= {total / given.wall:,.0f}"
            ),
            extra=extra,
        ),
        Result(
            f"SSE, {streams} concurrent streams × {events}: client CPU, httpx-sse ÷ default stream_sse",
            theirs.cpu / ours.cpu,
            1.0,
            detail=(
                f"{ours.cpu / streams * 1000:.1f} vs {theirs.cpu / streams * 1000:.1f} ms a stream"
                f" (ranges {ours.cpu_low / streams * 1000:.1f}-{ours.cpu_high / streams * 1000:.1f} vs"
                f" {theirs.cpu_low / streams * 1000:.1f}-{theirs.cpu_high / streams * 1000:.1f});"
                f" with client= {given.cpu / streams * 1000:.1f}"
            ),
        ),
    ]


async def responses(events: int, repetitions: int) -> list[Result]:
    """A Responses stream over HTTP: stream_responses against the httpx-sse loop on its events."""
    if not httpx_sse_installed("Responses over HTTP vs httpx-sse"):
        return []
    async with ServerProcess(events * CHUNK, CHUNK, "--responses", "--seed", "7") as server, shared_client() as client:
        progress(f"Responses over HTTP, {events:,} deltas: stream_responses vs the httpx-sse loop")
        assert await rxstream_responses(server.uri) == await httpx_sse_responses(client, server.uri)
        timings = await async_timings(
            {
                "rxstream": partial(rxstream_responses, server.uri),
                "httpx_sse": partial(httpx_sse_responses, client, server.uri),
            },
            repetitions,
        )
    ours, theirs = timings["rxstream"], timings["httpx_sse"]
    return [
        Result(
            f"Responses over HTTP, {events:,} deltas: stream_responses vs the httpx-sse loop, events/s",
            theirs.wall / ours.wall,
            1.0,
            detail=f"walls {ours.wall:.3f} vs {theirs.wall:.3f} s ({spread(ours)} vs {spread(theirs)})",
            extra={f"{name}_{kind}": getattr(t, kind) for name, t in timings.items() for kind in ("wall", "cpu")},
        ),
        Result(
            f"Responses over HTTP, {events:,} deltas: client CPU, the httpx-sse loop ÷ stream_responses",
            theirs.cpu / ours.cpu,
            1.0,
            detail=(
                f"{ours.cpu / events * 1e6:.2f} vs {theirs.cpu / events * 1e6:.2f} µs a delta (ranges"
                f" {ours.cpu_low / events * 1e6:.2f}-{ours.cpu_high / events * 1e6:.2f} vs"
                f" {theirs.cpu_low / events * 1e6:.2f}-{theirs.cpu_high / events * 1e6:.2f})"
            ),
        ),
    ]


def chat_body(events: int) -> bytes:
    """A chat completion's SSE body of ``events`` text deltas, as OpenAI sends it: ``data:`` lines, no ids."""
    text = generate(events * CHUNK, seed=5)
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1727346178, "model": "gpt-4o"}
    lines = [
        b"data: "
        + orjson.dumps(
            {**base, "choices": [{"index": 0, "delta": {"content": text[i : i + CHUNK]}, "finish_reason": None}]}
        )
        + b"\n\n"
        for i in range(0, len(text), CHUNK)
    ]
    lines.append(
        b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"\n\n"
    )
    return b"".join(lines) + b"data: [DONE]\n\n"


def pieces(body: bytes, size: int = 16384) -> list[bytes]:
    """The body as an HTTP client reads it: in pieces of ``size`` bytes, events cut across them."""
    return [body[start : start + size] for start in range(0, len(body), size)]


def split_join(reads: list[bytes]) -> str:
    """The floor in memory: split on blank lines, orjson on each data line, the content joined."""
    parts: list[str] = []
    rest = b""
    for data in reads:
        *events, rest = (rest + data).split(b"\n\n")
        for event in events:
            payload = event[6:]
            if payload != b"[DONE]":
                content = orjson.loads(payload)["choices"][0]["delta"].get("content")
                if content:
                    parts.append(content)
    return "".join(parts)


def through_sse_pipeline(reads: list[bytes]) -> str:
    responses: list[rxstream.Response] = []
    rxstream.from_frames(sse_events(reads)).pipe(rxstream.sse_pipeline()).subscribe(responses.append)
    return responses[0].text


def in_memory(events: int, repetitions: int) -> list[Result]:
    """sse_pipeline over a body in memory (its decoder included) against split + orjson + join, in CPU time."""
    reads = pieces(chat_body(events))
    progress(f"SSE in memory, {events:,} events: sse_pipeline vs split + orjson + join")
    assert through_sse_pipeline(reads) == split_join(reads), "sse_pipeline and the split loop disagree"
    contenders: dict[str, Callable[[], object]] = {
        "rxstream": partial(through_sse_pipeline, reads),
        "split": partial(split_join, reads),
    }
    seconds = medians(contenders, repetitions, time.process_time)
    return [
        Result(
            f"SSE in memory, {events:,} events: sse_pipeline ÷ split + orjson + join, CPU",
            seconds["rxstream"] / seconds["split"],
            2.0,
            higher_is_better=False,
            detail=f"{seconds['rxstream'] / events * 1e6:.2f} vs {seconds['split'] / events * 1e6:.2f} µs an event",
            extra={f"{name}_seconds": value for name, value in seconds.items()},
        )
    ]
