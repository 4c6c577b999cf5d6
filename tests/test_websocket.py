"""The wire: from_websocket against the reference server on 127.0.0.1, under every fault."""

from __future__ import annotations

import asyncio
import gc
import os
import urllib.request
import weakref
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import Observer
from reactivex import operators as ops
from reactivex.abc import DisposableBase
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import rxstream
from rxstream import operators as rxo
from rxstream.core._demand import subscribe_upstream
from rxstream.core._values import Stats
from rxstream.operators._fast_path import FastPath
from rxstream.server import Faults, ReferenceServer, generate
from rxstream.transport._calls import stream, stream_text
from rxstream.transport._proxy import environment_proxy
from rxstream.transport._push_connection import PushConnection
from rxstream.transport._websocket import from_websocket

from .support import FIXTURES, partial_of

TOKEN = "s3cret-token-value"
TEXT = generate(3000, seed=7)  # mixed English and Chinese, 3000 characters
CHUNK = 16


def server(faults: str = "", **options: Any) -> ReferenceServer:
    return ReferenceServer(
        options.pop("text", TEXT), chunk_size=CHUNK, token=TOKEN, faults=Faults.parse(faults), **options
    )


def client(**options: Any) -> dict[str, Any]:
    return {"token": TOKEN, "request": {"prompt": "hi"}, "clock": rxstream.VirtualClock(), **options}


async def through_pipeline(uri: str, **options: Any) -> tuple[rxstream.Response, list[int]]:
    """The full pipeline, recording every index that reaches accumulate."""
    seen: list[int] = []

    def note(chunk: rxstream.Chunk) -> None:
        seen.append(chunk.index)

    response = await from_websocket(uri, **options).pipe(
        rxo.parse(),
        rxo.reorder(),
        rxo.backpressure_buffer(),
        ops.do_action(note),
        rxo.accumulate(),
        rxo.finalize(),
    )
    return response, seen


@pytest.mark.network
@pytest.mark.parametrize(
    ("faults", "retries"),
    [
        ("", 0),
        ("reorder=16,seed=1", 0),
        ("duplicate=0.3,seed=2", 0),
        ("delay=0.0005,jitter=0.001", 0),
        ("drop=3,seed=3", 1),  # a gap: 40002, request again from the gap
        ("abort_after=40", 1),  # no close frame: 1006, re-authenticate and resume
        ("reject_first=2", 2),  # 429 twice, then accepted
        ("reorder=8,duplicate=0.2,drop=2,seed=4", 1),
    ],
)
async def test_faults_reassemble_exactly_once(faults: str, retries: int) -> None:
    async with server(faults) as reference:
        response, seen = await through_pipeline(reference.uri, **client())
    assert response.text == TEXT and response.complete
    assert seen == list(range(len(reference.pieces)))  # every index once, in order
    assert response.stats.retries == retries


@pytest.mark.network
async def test_a_gap_ends_the_read_at_once_even_if_the_server_keeps_the_connection_open() -> None:
    # Chunk 88 never comes and the server goes silent after 180 frames without closing: the
    # request for the stream again must not wait for the close, nor for the idle timeout.
    async with server("drop=1,stall_after=180,seed=0") as reference:
        response, seen = await asyncio.wait_for(through_pipeline(reference.uri, **client(stream_timeout=5.0)), 4)
    assert response.text == TEXT and seen == list(range(len(reference.pieces)))
    assert response.stats.retries == 1 and reference.stats.connections == 2 and reference.stats.resumed_from == 88


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable that urllib would read as a proxy setting (it reads their names in any case)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.network
@pytest.mark.parametrize(("proxy", "variable"), [(True, "http_proxy"), (True, "Http_Proxy"), (None, "http_proxy")])
async def test_proxy_true_takes_the_environments_proxy_and_none_connects_directly(
    proxy: Any, variable: str, no_proxy_variables: pytest.MonkeyPatch
) -> None:
    no_proxy_variables.setenv(
        variable, "http://127.0.0.1:9"
    )  # the discard port: nothing listens there (any case counts, as urllib reads it)
    async with server() as reference:
        if proxy is None:
            response, _ = await through_pipeline(reference.uri, **client(proxy=None))
            assert response.text == TEXT
            return
        with pytest.raises(rxstream.StreamError) as caught:
            await through_pipeline(reference.uri, **client(proxy=proxy))
    assert isinstance(caught.value, rxstream.ConnectionLostError)
    assert "Connect call failed ('127.0.0.1', 9)" in str(caught.value)  # it went to the proxy
    assert reference.stats.connections == 0


@pytest.mark.skipif(
    urllib.request.getproxies is not urllib.request.getproxies_environment, reason="the system names proxies too"
)
def test_without_proxy_variables_the_environment_is_not_read_again_for_each_connection(
    no_proxy_variables: pytest.MonkeyPatch,
) -> None:
    assert environment_proxy() is None  # what websockets would find, without its four passes
    no_proxy_variables.setenv("WSS_PROXY", "http://127.0.0.1:9")
    assert environment_proxy() is True  # websockets resolves it


@pytest.mark.network
async def test_resume_from_is_honoured_after_an_abort() -> None:
    async with server("abort_after=50") as reference:
        response, seen = await through_pipeline(reference.uri, **client())
    assert response.text == TEXT and reference.stats.resumed_from == 50 and response.stats.duplicates == 0


@pytest.mark.network
async def test_a_server_that_cannot_resume_replays_and_reorder_drops_the_replay() -> None:
    async with server("abort_after=50", resume=False) as reference:
        response, seen = await through_pipeline(reference.uri, **client())
    assert response.text == TEXT and seen == list(range(len(reference.pieces)))
    assert response.stats.duplicates == 50


@pytest.mark.network
async def test_backoff_follows_the_policy_without_sleeping() -> None:
    clock = rxstream.VirtualClock()
    async with server("reject_first=3") as reference:
        response = await stream(reference.uri, **client(clock=clock))
    assert response.text == TEXT and clock.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.network
async def test_rate_limited_past_the_retries() -> None:
    clock = rxstream.VirtualClock()
    async with server("reject_first=10") as reference:
        with pytest.raises(rxstream.StreamError) as caught:
            await stream(reference.uri, **client(clock=clock, retry=rxstream.RetryPolicy(max_retries=3, cap=3.0)))
    cause = caught.value
    assert isinstance(cause, rxstream.RateLimitedError) and cause.retry_after == 1.0 and cause.attempts == 4
    assert clock.sleeps == [1.0, 2.0, 3.0]  # capped
    assert partial_of(caught.value).text == ""


@pytest.mark.network
async def test_connection_lost_for_good_keeps_the_partial() -> None:
    async with server("abort_after=30,repeat=0", resume=False) as reference:
        with pytest.raises(rxstream.StreamError) as caught:
            await stream(reference.uri, **client())
    assert isinstance(caught.value, rxstream.ConnectionLostError)
    assert partial_of(caught.value).text == TEXT[: 30 * CHUNK] and partial_of(caught.value).stats.retries == 3


@pytest.mark.network
async def test_malformed_frame_is_a_frame_error_with_the_prefix() -> None:
    async with server("malformed_at=20") as reference:
        with pytest.raises(rxstream.StreamError) as caught:
            await stream(reference.uri, **client())
    cause = caught.value
    assert isinstance(cause, rxstream.FrameError) and cause.number == 21
    assert partial_of(caught.value).text == TEXT[: 20 * CHUNK]


@pytest.mark.network
async def test_oversize_frame_ends_the_stream() -> None:
    async with server("oversize_at=10,oversize_bytes=70000") as reference:
        with pytest.raises(rxstream.StreamError) as caught:
            await stream(reference.uri, **client(max_size=65536))
    assert isinstance(caught.value, rxstream.FrameTooLargeError)
    assert partial_of(caught.value).text == TEXT[: 10 * CHUNK] and "max_size=65536" in str(caught.value)


@pytest.mark.network
async def test_stall_times_out() -> None:
    async with server("stall_after=5") as reference:
        with pytest.raises(rxstream.StreamError) as caught:
            await stream(reference.uri, **client(stream_timeout=0.2))
    assert isinstance(caught.value, rxstream.StreamTimeoutError)
    assert partial_of(caught.value).text == TEXT[: 5 * CHUNK]


@pytest.mark.network
async def test_bad_token_is_an_authentication_error_without_the_token() -> None:
    async with server() as reference:
        with pytest.raises(rxstream.StreamError) as caught:
            await stream(reference.uri, **client(token="wrong-token-value"))
    cause = caught.value
    assert isinstance(cause, rxstream.AuthenticationError) and "1008" in str(cause)
    for text in (str(caught.value), repr(cause), str(cause)):
        assert "wrong-token-value" not in text and TOKEN not in text


@pytest.mark.network
async def test_token_callable_is_called_for_every_connection() -> None:
    calls: list[int] = []

    async def token() -> str:
        calls.append(1)
        return TOKEN

    async with server("abort_after=20") as reference:
        response = await stream(reference.uri, **client(token=token))
    assert response.text == TEXT and len(calls) == 2
    assert "s3cret" not in repr(from_websocket(reference.uri, token=TOKEN))


@pytest.mark.network
async def test_rate_limit_spaces_connection_attempts() -> None:
    clock = rxstream.VirtualClock()
    async with server("abort_after=5,repeat=3", resume=True) as reference:
        response = await stream(
            reference.uri, **client(clock=clock, rate_limit=2.0, retry=rxstream.RetryPolicy(initial=0.0))
        )
    assert response.text == TEXT
    assert clock.sleeps.count(0.0) == 3 and [s for s in clock.sleeps if s] == [0.5, 0.5, 0.5]


@pytest.mark.network
async def test_the_server_answers_429_beyond_its_qps() -> None:
    # The server streams at once: a client that read nothing with a bounded queue would stop reading the
    # socket, the server's close frame behind the stream, and wait its close_timeout (10 s) to leave.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with server(qps=2) as reference:
        async with connect(reference.uri, additional_headers=headers, max_queue=None):
            pass
        async with connect(reference.uri, additional_headers=headers, max_queue=None):
            pass
        with pytest.raises(InvalidStatus) as caught:
            await connect(reference.uri, additional_headers={"Authorization": f"Bearer {TOKEN}"})
    assert caught.value.response.status_code == 429 and caught.value.response.headers["Retry-After"] == "1"
    assert reference.stats.rejected == 1


@pytest.mark.network
async def test_stream_text_yields_deltas() -> None:
    async with server("reorder=4") as reference:
        deltas = [delta async for delta in stream_text(reference.uri, **client())]
    assert "".join(deltas) == TEXT and len(deltas) == len(reference.pieces)


@pytest.mark.network
async def test_slow_consumer_stops_the_socket_and_the_server_blocks() -> None:
    big = "x" * (16 * 1024 * 4000)  # 4000 frames of 16 KiB: more than every buffer on the way holds
    async with ReferenceServer(big, chunk_size=16 * 1024, token=TOKEN) as reference:
        iterator = rxstream.to_async_iterable(
            from_websocket(reference.uri, **client()).pipe(rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(5))
        )
        taken = [await anext(iterator) for _ in range(3)]
        sent = await settled(lambda: reference.stats.frames_sent)
        (connection,) = reference.connections
        assert connection.transport.get_write_buffer_size() > 0  # the server's writes are blocked
        assert sent < 4000 // 2 and [c.index for c in taken] == [0, 1, 2]
        await iterator.aclose()


@pytest.mark.network
async def test_a_slow_consumer_takes_every_chunk_of_small_frames_that_arrive_many_to_a_read() -> None:
    """Demand pauses in the middle of one read's messages: the rest wait in the backlog and
    are delivered in order when the consumer takes again, none lost or repeated."""
    text = generate(40_000, seed=3)
    async with server(text=text) as reference:
        iterator = rxstream.to_async_iterable(
            from_websocket(reference.uri, **client()).pipe(rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(2))
        )
        chunks = []
        async for chunk in iterator:
            chunks.append(chunk)
            if len(chunks) % 7 == 0:
                await asyncio.sleep(0.001)  # the socket fills meanwhile
    assert [c.index for c in chunks] == list(range(len(reference.pieces)))
    assert "".join(c.data for c in chunks) == text
    assert iterator.stats.buffer_high_water == 2


@pytest.mark.network
async def test_a_finished_stream_is_freed_without_the_garbage_collector() -> None:
    """No reference cycles outlive a stream: its stages and connection go by reference counting
    when it ends. (Each cycle would wait for a full collection, and a thousand concurrent
    streams left a hundred objects each for the collector to find.)"""
    kinds = (rxstream.Stage, FastPath, PushConnection)
    gc.collect()
    gc.disable()
    try:
        before = {id(o) for o in gc.get_objects() if issubclass(type(o), kinds)}
        # Frames a little apart: sent all at once, they all arrive with the request still going out,
        # and the stream is over, its stages freed, before there is anything to look at.
        async with server("delay=0.0005") as reference:
            assert (await stream(reference.uri, **client())).text == TEXT
            alive = [weakref.ref(o) for o in gc.get_objects() if issubclass(type(o), kinds) and id(o) not in before]
            assert len(alive) >= 7  # the fast path, five stages, the connection
            for _ in range(300):  # the session closes the connection after the response is out
                if all(ref() is None for ref in alive):
                    break
                await asyncio.sleep(0.01)
            assert [type(ref()).__name__ for ref in alive if ref() is not None] == []
    finally:
        gc.enable()


async def settled(read: Any, rounds: int = 400) -> int:
    """The value once it has stopped changing for a while (bounded)."""
    last, still = -1, 0
    for _ in range(rounds):
        await asyncio.sleep(0.005)
        value = read()
        still = still + 1 if value == last else 0
        last = value
        if still >= 20:
            return int(value)
    raise AssertionError("never settled")


@pytest.mark.network
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reorder=st.integers(0, 12),
    duplicate=st.sampled_from([0.0, 0.1, 0.5]),
    drop=st.integers(0, 3),
    abort_after=st.none() | st.integers(1, 150),
    seed=st.integers(0, 1000),
)
def test_random_faults_give_exact_text_or_a_typed_error(
    reorder: int, duplicate: float, drop: int, abort_after: int | None, seed: int
) -> None:
    faults = Faults(seed=seed, reorder=reorder, duplicate=duplicate, drop=drop, abort_after=abort_after)

    async def run() -> None:
        async with ReferenceServer(TEXT, chunk_size=CHUNK, token=TOKEN, faults=faults) as reference:
            try:
                response = await stream(reference.uri, **client())
            except rxstream.StreamError as error:
                assert TEXT.startswith(partial_of(error).text) and isinstance(error, rxstream.StreamError)
            else:
                assert response.text == TEXT

    asyncio.run(run())


def recorded_deltas(path: Path) -> list[str]:
    """The text deltas of a recorded stream, one protocol chunk each.

    OpenAI: choice 0's ``delta.content``; Anthropic: block 0's ``text_delta`` events.
    """
    deltas = []
    for line in path.read_text().splitlines():
        if not line.startswith("data: {"):
            continue
        event = orjson.loads(line[6:])
        for choice in event.get("choices", ()):
            if choice["index"] == 0 and choice["delta"].get("content"):
                deltas.append(choice["delta"]["content"])
        if (
            event.get("type") == "content_block_delta"
            and event["index"] == 0
            and event["delta"]["type"] == "text_delta"
        ):
            deltas.append(event["delta"]["text"])
    return deltas


@pytest.mark.network
@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "openai-python/chat-completions-plain-text.sse",
            "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, "
            "I recommend checking a reliable weather website or a weather app.",
        ),
        (
            "openai-python/chat-completions-n3-interleaved-choices.sse",
            '{"city":"San Francisco","temperature":65,"units":"f"}',
        ),
        ("anthropic-sdk-python/basic_response.txt", "Hello there!"),
        (
            "anthropic-sdk-python/incomplete_partial_json_response.txt",
            "I'll create a comprehensive tax guide for someone with multiple W2s and save it in a file called "
            "taxes.txt. Let me do that for you now.",
        ),
    ],
)
@pytest.mark.parametrize("faults", ["", "reorder=6,duplicate=0.3,drop=1,abort_after=7,seed=9"])
async def test_recorded_real_streams_through_the_reference_server(fixture: str, expected: str, faults: str) -> None:
    deltas = recorded_deltas(FIXTURES / fixture)
    assert "".join(deltas) == expected  # the README's expectation of the recording
    async with ReferenceServer(deltas, token=TOKEN, faults=Faults.parse(faults)) as reference:
        response, seen = await through_pipeline(reference.uri, **client())
    assert response.text == expected and response.chunks == len(deltas) and seen == list(range(len(deltas)))


@pytest.mark.network
@pytest.mark.parametrize("inside", [True, False], ids=["from on_next", "between reads"])
async def test_a_disposed_source_says_nothing_more(inside: bool) -> None:
    """from_websocket is subscribed without RxPY's AutoDetachObserver: it stops by itself."""
    loop = asyncio.get_running_loop()
    items: list[bytes] = []
    ended: list[object] = []
    disposed_after: list[int] = []
    subscription: list[DisposableBase] = []

    def dispose() -> None:
        disposed_after.append(len(items))
        subscription[0].dispose()

    def on_next(frame: bytes) -> None:
        items.append(frame)
        if len(items) == 10 and inside:
            dispose()
        elif len(items) == 10:
            loop.call_soon(dispose)

    async with server(text=generate(100_000, seed=5)) as reference:
        observer = Observer(on_next, ended.append, lambda: ended.append("completed"))
        subscription.append(
            subscribe_upstream(from_websocket(reference.uri, **client()), observer, None, stats=Stats(), demand=None)
        )
        await settled(lambda: len(reference.connections) + len(items))
        assert not reference.connections  # the client closed the connection
    assert disposed_after and len(items) == disposed_after[0] and ended == []
