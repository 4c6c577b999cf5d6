"""The reference Responses endpoint in WebSocket mode, with its seeded faults, read by stream_responses over
ws://: the exact result, or a typed error with the exact partial; background responses resumed over SSE
exactly once; and the openai SDK's own responses.connect() against the same endpoint."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import openai
import pytest

import rxstream
from rxstream.server import ReferenceResponsesServer, generate
from tests.test_responses_differential import expected, through_the_sdk
from tests.test_responses_server import TEXT, THINKING, TOKEN, exact, reference


async def streamed(server: ReferenceResponsesServer, background: bool = False, **options: Any) -> rxstream.Response:
    body = rxstream.responses_request("m", "hi", **({"background": True} if background else {}))
    call = rxstream.stream_responses(
        server.websocket_url, json=body, token=TOKEN, clock=rxstream.VirtualClock(), proxy=None, **options
    )
    return await asyncio.wait_for(call, 20)


async def failed(server: ReferenceResponsesServer, **options: Any) -> rxstream.IncompleteStreamError:
    with pytest.raises(rxstream.IncompleteStreamError) as caught:
        await streamed(server, **options)
    return caught.value


async def test_the_sdk_reads_the_same_response_from_the_websocket_mode() -> None:
    async with reference() as server:
        client = openai.AsyncOpenAI(api_key=TOKEN, base_url=server.url.removesuffix("/responses"))
        client.websocket_base_url = server.websocket_url.removesuffix("/responses")
        events: list[dict[str, Any]] = []
        async with client.responses.connect() as connection:
            await connection.response.create(model="m", input="hi")
            async for event in connection:
                events.append(event.to_dict())
                if event.type == "response.completed":
                    break
        ours = await streamed(server)
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
    exact(ours)
    assert ours.id == "resp_ref1" and server.stats.created == 2


@pytest.mark.parametrize(
    "faults", ["", "reorder=8", "duplicate=0.3", "reorder=6,duplicate=0.2,seed=3", "reject_first=2"]
)
async def test_faults_a_stream_recovers_from_in_one_response(faults: str) -> None:
    async with reference(faults) as server:
        response = await streamed(server)
        exact(response)
        assert server.stats.created == 1 and server.stats.connections == 1
    if "reorder" in faults:
        assert response.stats.out_of_order > 0
    if "duplicate" in faults:
        assert response.stats.duplicates > 0
    if "reject" in faults:
        assert response.stats.retries == 2 and server.stats.rejected == 2


@pytest.mark.parametrize("faults", ["abort_after=30", "abort_after=30,repeat=2", "drop=2", "reorder=8,abort_after=40"])
async def test_a_background_response_resumes_over_sse_after_the_last_event_delivered(faults: str) -> None:
    async with reference(faults) as server:
        response = await streamed(server, background=True)
        exact(response)
        # one response made: the WebSocket connection, then the resuming GETs
        assert server.stats.created == 1 and server.stats.connections == response.stats.retries + 1 > 1
        if faults == "abort_after=30":
            assert server.stats.resumed_from == 30  # sequence numbers 0..29 came, in order: starting_after=29


@pytest.mark.parametrize("faults", ["abort_after=30", "drop=1", "duplicate=0.2,abort_after=50"])
async def test_a_response_that_is_not_background_fails_with_the_partial_and_no_second_response_create(
    faults: str,
) -> None:
    async with reference(faults) as server:
        error = await failed(server)
        assert server.stats.created == 1 and server.stats.connections == 1
    cause = error.__cause__
    assert isinstance(cause, rxstream.ConnectionLostError) and "a new response.create" in str(cause)
    assert TEXT.startswith(error.partial.text) and len(error.partial.text) < len(TEXT)
    assert error.partial.reasoning == THINKING and error.partial.id == "resp_ref0"
    if faults == "abort_after=30":
        assert error.partial.text == TEXT[: 18 * 16]  # as over SSE: 10 reasoning events, then 18 deltas by event 29


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
    assert error.partial.text == TEXT[: 8 * 16]  # events 0..19: 10 of the reasoning, 2 opening the message, 8 deltas


async def test_an_oversized_event_ends_the_stream_with_the_partial() -> None:
    async with reference("oversize_at=20,oversize_bytes=70000") as server:
        error = await failed(server, background=True, max_size=65536)
        assert server.stats.connections == 1
    assert isinstance(error.__cause__, rxstream.FrameTooLargeError) and error.partial.text == TEXT[: 8 * 16]


async def test_a_stall_times_out_with_the_partial() -> None:
    async with reference("stall_after=20") as server:
        error = await failed(server, background=True, stream_timeout=0.2)
    assert isinstance(error.__cause__, rxstream.StreamTimeoutError) and error.partial.text == TEXT[: 8 * 16]


async def test_rate_limited_at_every_handshake_is_a_typed_error_and_makes_nothing() -> None:
    async with reference("reject_first=10") as server:
        error = await failed(server, retry=rxstream.RetryPolicy(max_retries=2))
        assert server.stats.created == 0 and server.stats.rejected == 3
    assert isinstance(error.__cause__, rxstream.RateLimitedError) and error.partial.text == ""


async def test_a_wrong_token_is_refused_at_the_handshake() -> None:
    async with reference() as server:
        with pytest.raises(rxstream.IncompleteStreamError) as caught:
            await rxstream.stream_responses(server.websocket_url, json={}, token="wrong", proxy=None)
        assert server.stats.created == 0
    assert isinstance(caught.value.__cause__, rxstream.AuthenticationError)
    assert "wrong" not in str(caught.value)


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
        websocket_url = banner.split(" and ")[1].split(" ")[0]
        assert websocket_url.startswith("ws://")
        for url in (websocket_url, banner.split(" on ")[1].split(" ")[0]):
            connect = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "rxstream", "connect", "--responses", url, "--model", "m", "--prompt", "hi"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(connect.communicate(), 30)
            assert connect.returncode == 0, err.decode()
            assert out.decode().strip() == generate(500, seed=2)
            assert "reordered" in err.decode()  # the stats table
    finally:
        process.terminate()
        await process.wait()
