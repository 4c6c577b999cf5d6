"""The reference Responses endpoint (rxstream.server) with its seeded faults, read by stream_responses:
the exact result, or a typed error with the exact partial; background responses resumed exactly once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any

import httpx
import orjson
import pytest

import rxstream
from rxstream.protocol._sse import sse_events
from rxstream.server import Faults, ReferenceResponsesServer, generate
from rxstream.server._faults import plan
from tests.test_responses_differential import expected, through_the_sdk

pytestmark = pytest.mark.network  # every test here runs the reference server on 127.0.0.1

TEXT = generate(1200, seed=5)
THINKING = "First the question, then the answer."
TOKEN = "ref-token"


def reference(faults: str = "", **options: Any) -> ReferenceResponsesServer:
    return ReferenceResponsesServer(
        TEXT, chunk_size=16, reasoning=THINKING, token=TOKEN, faults=Faults.parse(faults), **options
    )


async def streamed(
    server: ReferenceResponsesServer, background: bool = False, window: int | None = None, **options: Any
) -> rxstream.Response:
    """stream_responses' response; with ``window``, that of from_sse through a responses_pipeline of that window."""
    body = rxstream.responses_request("m", "hi", **({"background": True} if background else {}))
    options = {"json": body, "token": TOKEN, "clock": rxstream.VirtualClock(), **options}
    call: Awaitable[rxstream.Response]
    if window is None:
        call = rxstream.stream_responses(server.url, **options)
    else:
        call = rxstream.from_sse(server.url, api="responses", **options).pipe(
            rxstream.responses_pipeline(window=window)
        )
    return await asyncio.wait_for(call, 20)


async def failed(server: ReferenceResponsesServer, **options: Any) -> rxstream.IncompleteStreamError:
    with pytest.raises(rxstream.IncompleteStreamError) as caught:
        await streamed(server, **options)
    return caught.value


def exact(response: rxstream.Response) -> None:
    assert response.complete and response.text == TEXT and response.reasoning == THINKING
    assert response.finish_reason == "completed" and response.id is not None
    assert response.stats.usage is not None and response.stats.usage["total_tokens"] > 7


async def test_the_events_are_what_the_sdk_accumulates() -> None:
    async with reference() as server, httpx.AsyncClient() as client:
        reply = await client.post(server.url, json={"stream": True}, headers={"Authorization": f"Bearer {TOKEN}"})
    events = [orjson.loads(event.data) for event in sse_events([reply.content])]
    assert [event["sequence_number"] for event in events] == list(range(server.count))
    assert expected(through_the_sdk(events)[0]) == {
        "id": "resp_ref0",
        "text": TEXT,
        "reasoning": THINKING,
        "refusal": None,
        "tool_calls": (),
        "finish_reason": "completed",
        "usage": server.usage,
    }


@pytest.mark.parametrize(
    "faults", ["", "reorder=8", "duplicate=0.3", "reorder=6,duplicate=0.2,seed=3", "reject_first=2"]
)
async def test_faults_a_stream_recovers_from_in_one_response(faults: str) -> None:
    async with reference(faults) as server:
        response = await streamed(server)
        exact(response)
        assert server.stats.created == 1
    if "reorder" in faults:
        assert response.stats.out_of_order > 0
    if "duplicate" in faults:
        assert response.stats.duplicates > 0


@pytest.mark.parametrize("faults", ["abort_after=30", "abort_after=30,repeat=2", "drop=2", "reorder=8,abort_after=40"])
async def test_a_background_response_resumes_after_the_last_event_delivered(faults: str) -> None:
    async with reference(faults) as server:
        response = await streamed(server, background=True)
        exact(response)
        assert server.stats.created == 1 and server.stats.connections == response.stats.retries + 1 > 1
        if faults == "abort_after=30":
            assert server.stats.resumed_from == 30  # sequence numbers 0..29 came, in order: starting_after=29


@pytest.mark.parametrize("faults", ["abort_after=30", "drop=1", "duplicate=0.2,abort_after=50"])
async def test_a_response_that_is_not_background_fails_with_the_partial_and_is_not_made_again(faults: str) -> None:
    async with reference(faults) as server:
        error = await failed(server)
        assert server.stats.created == 1 and server.stats.connections == 1
    assert isinstance(error.__cause__, rxstream.ConnectionLostError)
    assert TEXT.startswith(error.partial.text) and len(error.partial.text) < len(TEXT)
    assert error.partial.reasoning == THINKING  # the reasoning comes first and was whole
    if faults == "abort_after=30":
        # events 0..29: created, in_progress, the reasoning item (added, part added, 3 deltas, done,
        # part done, done: 10 events in all), then the message item added, its part added, and 18 deltas
        assert error.partial.text == TEXT[: 18 * 16]


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
        error = await failed(server, window=4)
        assert server.stats.created == 1 and server.stats.connections == 1
        gap = left_out(server)[0]
    assert isinstance(error.__cause__, rxstream.InvalidChunkError) and error.__cause__.expected == gap
    # created, in_progress, the reasoning item (events 2..9), the message item and its part added: text from 12
    assert gap > 12 and error.partial.reasoning == THINKING and error.partial.text == TEXT[: (gap - 12) * 16]


async def test_a_stall_times_out_with_the_partial_and_a_background_response_resumes_after_it() -> None:
    async with reference("stall_after=30") as server:
        error = await failed(server, stream_timeout=0.1)
        assert server.stats.created == 1 and server.stats.connections == 1
    assert isinstance(error.__cause__, rxstream.StreamTimeoutError)
    assert error.partial.reasoning == THINKING and error.partial.text == TEXT[: 18 * 16]  # events 12..29
    async with reference("stall_after=30") as server:
        response = await streamed(server, background=True, stream_timeout=0.1)
        exact(response)
        assert server.stats.created == 1 and server.stats.connections == 2 and server.stats.resumed_from == 30
    assert response.stats.retries == 1 and response.stats.duplicates == 0


async def test_a_background_response_dropped_before_its_id_came_is_not_made_again() -> None:
    async with reference("abort_after=0") as server:
        error = await failed(server, background=True)
        assert server.stats.created == 1 and server.stats.connections == 1
    assert isinstance(error.__cause__, rxstream.ConnectionLostError) and "no response id came" in str(error.__cause__)
    assert error.partial.text == "" and error.partial.id is None


async def test_a_malformed_event_is_a_frame_error_with_the_partial() -> None:
    async with reference("malformed_at=20") as server:
        error = await failed(server, background=True)
    assert isinstance(error.__cause__, rxstream.FrameError) and error.__cause__.number == 21
    assert TEXT.startswith(error.partial.text) and error.partial.text


async def test_rate_limited_on_every_try_is_a_typed_error() -> None:
    async with reference("reject_first=10") as server:
        error = await failed(server, retry=rxstream.RetryPolicy(max_retries=2))
        assert server.stats.created == 0
    assert isinstance(error.__cause__, rxstream.RateLimitedError) and error.partial.text == ""


async def test_a_wrong_token_is_refused_and_unknown_responses_are_404() -> None:
    async with reference() as server, httpx.AsyncClient() as client:
        with pytest.raises(rxstream.IncompleteStreamError) as caught:
            await rxstream.stream_responses(server.url, json={"stream": True}, token="wrong")
        assert isinstance(caught.value.__cause__, rxstream.AuthenticationError)
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        unknown = await client.get(f"{server.url}/resp_nope?stream=true", headers=authorized)
        await client.post(server.url, json={"stream": True}, headers=authorized)  # resp_ref0, not background
        not_background = await client.get(f"{server.url}/resp_ref0?stream=true", headers=authorized)
    assert unknown.status_code == not_background.status_code == 404


async def test_serve_responses_runs_the_reference_endpoint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "rxstream", "serve", "--responses", "--port", "0", "--size", "500", "--seed", "2"),
        *("--faults", "reorder=4,duplicate=0.2"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = banner.split(" on ")[1].split(" ")[0]
        response = await rxstream.stream_responses(url, json=rxstream.responses_request("m", "hi"))
        assert response.text == generate(500, seed=2) and response.stats.out_of_order > 0
    finally:
        process.terminate()
        await process.wait()
