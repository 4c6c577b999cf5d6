"""The reference Responses endpoint (rxstream.server) with its seeded faults, read by stream_responses over
SSE and in WebSocket mode: the exact result, or a typed error with the exact partial; background responses
resumed (over SSE) exactly once; the openai SDK reading either transport."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable
from typing import Any

import httpx
import openai
import orjson
import pytest

import rxstream
from rxstream import operators as rxo
from rxstream.protocol._sse import sse_events
from rxstream.server import Faults, ReferenceResponsesServer, generate
from rxstream.server._faults import plan
from tests.support import partial_of
from tests.test_responses_differential import expected, through_the_sdk

pytestmark = pytest.mark.network  # every test here runs the reference server on 127.0.0.1

TEXT = generate(1200, seed=5)
THINKING = "First the question, then the answer."
TOKEN = "ref-token"


def reference(faults: str = "", **options: Any) -> ReferenceResponsesServer:
    return ReferenceResponsesServer(
        TEXT, chunk_size=16, reasoning=THINKING, token=TOKEN, faults=Faults.parse(faults), **options
    )


# Both transports: SSE (POST, server.url), and WebSocket mode (a response.create message, server.websocket_url),
# resumed over SSE in either case.
TRANSPORTS = pytest.mark.parametrize("transport", ["sse", "websocket"])
CREATION = {"sse": "POST", "websocket": "response.create"}  # what a new response would be asked with


async def streamed(
    server: ReferenceResponsesServer,
    transport: str = "sse",
    background: bool = False,
    window: int | None = None,
    **options: Any,
) -> rxstream.Response:
    """stream_responses' response; with ``window``, that of from_sse through a responses_pipeline of that window."""
    body = rxstream.responses_request("m", "hi", **({"background": True} if background else {}))
    options = {"request": body, "token": TOKEN, "clock": rxstream.VirtualClock(), **options}
    call: Awaitable[rxstream.Response]
    if window is None:
        url = server.url if transport == "sse" else server.websocket_url
        call = rxstream.stream_responses(url, **options)
    else:
        assert transport == "sse"
        call = rxstream.from_sse(server.url, api="responses", **options).pipe(
            rxstream.responses_pipeline(window=window)
        )
    return await asyncio.wait_for(call, 20)


async def failed(server: ReferenceResponsesServer, transport: str, **options: Any) -> rxstream.StreamError:
    with pytest.raises(rxstream.StreamError) as caught:
        await streamed(server, transport, **options)
    return caught.value


def exact(response: rxstream.Response) -> None:
    assert response.complete and response.text == TEXT and response.reasoning == THINKING
    assert response.finish_reason == "completed" and response.id is not None
    assert response.stats.usage is not None and response.stats.usage["total_tokens"] > 7


async def sdk_events(server: ReferenceResponsesServer, transport: str) -> list[dict[str, Any]]:
    """The events of one response as the openai SDK's client gets them: a streamed POST's body, or
    responses.connect()'s messages after its response.create."""
    if transport == "sse":
        async with httpx.AsyncClient() as client:
            reply = await client.post(server.url, json={"stream": True}, headers={"Authorization": f"Bearer {TOKEN}"})
        return [orjson.loads(event.data) for event in sse_events([reply.content])]
    sdk = openai.AsyncOpenAI(api_key=TOKEN, base_url=server.url.removesuffix("/responses"))
    sdk.websocket_base_url = server.websocket_url.removesuffix("/responses")
    events: list[dict[str, Any]] = []
    async with sdk.responses.connect() as connection:
        await connection.response.create(model="m", input="hi")
        async for event in connection:
            events.append(event.to_dict())
            if event.type == "response.completed":
                return events
    raise AssertionError("the connection ended before response.completed")


@TRANSPORTS
async def test_the_events_are_what_the_sdk_accumulates(transport: str) -> None:
    async with reference() as server:
        events = await sdk_events(server, transport)
        ours = await streamed(server, transport)
    assert [event["sequence_number"] for event in events] == list(range(server.count))
    assert expected(through_the_sdk(events)[0]) == {
        "id": "resp_ref0",
        "text": TEXT,
        "reasoning": THINKING,
        "refusal": None,
        "tool_calls": (),
        "finish_reason": "completed",
        "usage": server.usage,
        "reasoning_items": [
            {"type": "reasoning", "id": "rs_0", "summary": [{"type": "summary_text", "text": THINKING}]}
        ],
    }
    exact(ours)
    assert ours.id == "resp_ref1" and server.stats.created == 2


@TRANSPORTS
@pytest.mark.parametrize(
    "faults", ["", "reorder=8", "duplicate=0.3", "reorder=6,duplicate=0.2,seed=3", "reject_first=2"]
)
async def test_faults_a_stream_recovers_from_in_one_response(transport: str, faults: str) -> None:
    async with reference(faults) as server:
        response = await streamed(server, transport)
        exact(response)
        assert server.stats.created == 1 and server.stats.connections == 1
    if "reorder" in faults:
        assert response.stats.out_of_order > 0
    if "duplicate" in faults:
        assert response.stats.duplicates > 0
    if "reject" in faults:
        assert response.stats.retries == 2 and server.stats.rejected == 2


@TRANSPORTS
@pytest.mark.parametrize("faults", ["abort_after=30", "abort_after=30,repeat=2", "drop=2", "reorder=8,abort_after=40"])
async def test_a_background_response_resumes_after_the_last_event_delivered(transport: str, faults: str) -> None:
    async with reference(faults) as server:
        response = await streamed(server, transport, background=True)
        exact(response)
        # one response made: the first connection (the POST or the WebSocket), then the resuming GETs
        assert server.stats.created == 1 and server.stats.connections == response.stats.retries + 1 > 1
        if faults == "abort_after=30":
            assert server.stats.resumed_from == 30  # sequence numbers 0..29 came, in order: starting_after=29


@TRANSPORTS
@pytest.mark.parametrize("faults", ["abort_after=30", "drop=1", "duplicate=0.2,abort_after=50"])
async def test_a_response_that_is_not_background_fails_with_the_partial_and_is_not_made_again(
    transport: str, faults: str
) -> None:
    async with reference(faults) as server:
        error = await failed(server, transport)
        assert server.stats.created == 1 and server.stats.connections == 1
    cause = error
    assert isinstance(cause, rxstream.ConnectionLostError) and f"a new {CREATION[transport]}" in str(cause)
    assert TEXT.startswith(partial_of(error).text) and len(partial_of(error).text) < len(TEXT)
    assert partial_of(error).reasoning == THINKING  # the reasoning comes first and was whole
    if faults == "abort_after=30":
        # events 0..29: created, in_progress, the reasoning item (added, part added, 3 deltas, done,
        # part done, done: 10 events in all), then the message item added, its part added, and 18 deltas
        assert partial_of(error).text == TEXT[: 18 * 16]


def left_out(server: ReferenceResponsesServer) -> list[int]:
    """The events the drop fault leaves out of the first connection's body."""
    sent = {step.index for step in plan(server.count, server.faults, 0)}
    return [index for index in range(server.count) if index not in sent]


async def test_a_drop_past_a_small_window_resumes_a_background_response_from_the_gap() -> None:
    async with reference("drop=1") as server:
        response = await streamed(server, background=True, window=4)
        exact(response)
        assert server.stats.created == 1 and server.stats.connections == 2 and response.stats.retries == 1
        assert server.stats.resumed_from == left_out(server)[0]  # starting_after: the event before the gap
    assert response.stats.duplicates == 0


async def test_a_drop_past_a_small_window_of_a_response_that_is_not_background_fails_with_the_partial() -> None:
    async with reference("drop=1") as server:
        error = await failed(server, "sse", window=4)
        assert server.stats.created == 1 and server.stats.connections == 1
        gap = left_out(server)[0]
    assert isinstance(error, rxstream.InvalidChunkError) and error.expected == gap
    # created, in_progress, the reasoning item (events 2..9), the message item and its part added: text from 12
    assert gap > 12 and partial_of(error).reasoning == THINKING and partial_of(error).text == TEXT[: (gap - 12) * 16]


@TRANSPORTS
async def test_a_background_response_dropped_before_its_id_came_is_not_made_again(transport: str) -> None:
    async with reference("abort_after=0") as server:
        error = await failed(server, transport, background=True)
        assert server.stats.created == 1 and server.stats.connections == 1
    assert isinstance(error, rxstream.ConnectionLostError) and "no response id came" in str(error)
    assert partial_of(error).text == "" and partial_of(error).id is None


# events 0..19: the 10 of the reasoning, 2 opening the message, and 8 deltas
@TRANSPORTS
async def test_a_malformed_event_is_a_frame_error_with_the_partial(transport: str) -> None:
    async with reference("malformed_at=20") as server:
        error = await failed(server, transport, background=True)
    assert isinstance(error, rxstream.FrameError) and error.number == 21
    assert partial_of(error).text == TEXT[: 8 * 16]


@TRANSPORTS
async def test_an_oversized_event_ends_the_stream_with_the_partial(transport: str) -> None:
    async with reference("oversize_at=20,oversize_bytes=70000") as server:
        error = await failed(server, transport, background=True, max_size=65536)
        assert server.stats.connections == 1
    assert isinstance(error, rxstream.FrameTooLargeError) and partial_of(error).text == TEXT[: 8 * 16]


@TRANSPORTS
async def test_a_stall_times_out_with_the_partial_and_a_background_response_resumes(transport: str) -> None:
    async with reference("stall_after=20") as server:
        error = await failed(server, transport, stream_timeout=0.2)
        assert server.stats.created == 1 and server.stats.connections == 1
    assert isinstance(error, rxstream.StreamTimeoutError) and partial_of(error).text == TEXT[: 8 * 16]
    async with reference("stall_after=20") as server:
        response = await streamed(server, transport, background=True, stream_timeout=0.2)
        exact(response)
        assert server.stats.created == 1 and server.stats.connections == 2 and server.stats.resumed_from == 20
    assert response.stats.retries == 1 and response.stats.duplicates == 0


@TRANSPORTS
async def test_rate_limited_on_every_try_is_a_typed_error(transport: str) -> None:
    async with reference("reject_first=10") as server:
        error = await failed(server, transport, retry=rxstream.RetryPolicy(max_retries=2))
        assert server.stats.created == 0 and server.stats.rejected == 3
    assert isinstance(error, rxstream.RateLimitedError) and partial_of(error).text == ""


async def test_a_wrong_token_is_refused_and_unknown_responses_are_404() -> None:
    async with reference() as server, httpx.AsyncClient() as client:
        with pytest.raises(rxstream.StreamError) as caught:
            await rxstream.stream_responses(server.url, request={"stream": True}, token="wrong")
        assert isinstance(caught.value, rxstream.AuthenticationError)
        with pytest.raises(rxstream.StreamError) as caught:  # at the WebSocket handshake: 401
            await rxstream.stream_responses(server.websocket_url, request={}, token="wrong")
        assert isinstance(caught.value, rxstream.AuthenticationError) and "wrong" not in str(caught.value)
        assert server.stats.created == 0
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        unknown = await client.get(f"{server.url}/resp_nope?stream=true", headers=authorized)
        await client.post(server.url, json={"stream": True}, headers=authorized)  # resp_ref0, not background
        not_background = await client.get(f"{server.url}/resp_ref0?stream=true", headers=authorized)
    assert unknown.status_code == not_background.status_code == 404


async def test_serve_responses_serves_both_transports_and_connect_reads_either() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "rxstream", "serve", "--responses", "--port", "0", "--size", "500", "--seed", "2"),
        *("--faults", "reorder=4,duplicate=0.2"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        urls = banner.split(" on ")[1].split(" ")[0], banner.split(" and ")[1].split(" ")[0]
        assert [url.split(":")[0] for url in urls] == ["http", "ws"]
        for url in urls:
            response = await rxstream.stream_responses(url, request=rxstream.responses_request("m", "hi"))
            assert response.text == generate(500, seed=2, whole_words=True) and response.stats.out_of_order > 0
            connect = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "rxstream", "connect", "--responses", url, "--model", "m", "--prompt", "hi"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(connect.communicate(), 30)
            assert connect.returncode == 0, err.decode()
            assert out.decode().strip() == generate(500, seed=2, whole_words=True)
            assert (
                re.search(r"finish reason +completed", err.decode()) and "reordered" not in err.decode()
            )  # chat stats
    finally:
        process.terminate()
        await process.wait()


async def test_a_full_buffer_stops_reading_the_websocket() -> None:
    # 4,000 events of 4,000 characters, more than the socket buffers hold: demand reaches the socket
    async with ReferenceResponsesServer("y" * 16_000_000, chunk_size=4000) as server:
        source = rxstream.from_websocket(server.websocket_url, request={"model": "m"}, api="responses")
        iterator = rxstream.to_async_iterable(
            source.pipe(rxo.parse_responses(), rxo.reorder(), rxo.backpressure_buffer(3))
        )
        first = [await anext(iterator) for _ in range(2)]
        for _ in range(50):
            await asyncio.sleep(0.005)
        assert [chunk.index for chunk in first] == [0, 1] and server.stats.frames_sent < 2000
        await iterator.aclose()
