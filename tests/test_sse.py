"""OpenAI-compatible SSE: the decoder, parse_sse on recorded real streams, and from_sse against the faulty endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo
from rxstream.protocol._sse import SSEEvent
from rxstream.server import Faults, ReferenceSSEServer, generate

from .support import FIXTURES, decode, partial_of

TOKEN = "sse-token"
TEXT = generate(1500, seed=11)
PLAIN = (
    "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, "
    "I recommend checking a reliable weather website or a weather app."
)


def test_decoder_follows_the_spec() -> None:
    raw = b"\xef\xbb\xbf: comment\r\nevent: greet\r\ndata: a\r\ndata:  b\r\nid: 7\r\nretry: 30\r\n\r\ndata: c\rdata\r\rdata: no blank line at the end"
    assert decode(raw) == [SSEEvent("a\n b", "greet", "7", 30), SSEEvent("c\n", "message", "7", None)]


@given(st.data())
def test_any_split_into_reads_parses_to_the_same_events(data: st.DataObject) -> None:
    lines = data.draw(
        st.lists(
            st.sampled_from(
                ['data: {"x": 1}', "data: é中", ": ping", "id: 3", "event: e", "", "data:", "data: [DONE]"]
            ),
            max_size=30,
        )
    )
    ending = data.draw(st.sampled_from(["\n", "\r\n", "\r"]))
    raw = "".join(line + ending for line in lines).encode()
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=10))
    assert decode(raw, cuts) == decode(raw)


async def through(events: list[SSEEvent], choice: int = 0) -> rxstream.Response:
    response: rxstream.Response = await rxstream.from_frames(events).pipe(rxstream.sse_pipeline(choice=choice))
    return response


async def test_recorded_plain_text_stream() -> None:
    response = await through(decode((FIXTURES / "openai-python" / "chat-completions-plain-text.sse").read_bytes()))
    assert response.text == PLAIN and response.complete and response.finish_reason == "stop"
    assert response.stats.usage is not None and (
        response.stats.usage["prompt_tokens"],
        response.stats.usage["completion_tokens"],
        response.stats.usage["total_tokens"],
    ) == (14, 30, 44)
    assert response.reasoning == ""


@pytest.mark.parametrize(("choice", "temperature"), [(0, 65), (1, 61), (2, 59)])
async def test_recorded_interleaved_choices(choice: int, temperature: int) -> None:
    response = await through(
        decode((FIXTURES / "openai-python" / "chat-completions-n3-interleaved-choices.sse").read_bytes()), choice
    )
    assert response.text == f'{{"city":"San Francisco","temperature":{temperature},"units":"f"}}'
    assert response.stats.usage is not None and response.stats.usage["total_tokens"] == 121


@pytest.mark.parametrize(
    ("fixture", "text", "finish_reason", "input_tokens", "output_tokens"),
    [
        ("basic_response.txt", "Hello there!", "end_turn", 11, 6),
        (
            "incomplete_partial_json_response.txt",
            "I'll create a comprehensive tax guide for someone with multiple W2s and save it in a file called "
            "taxes.txt. Let me do that for you now.",
            "max_tokens",
            450,
            124,
        ),
    ],
)
async def test_recorded_anthropic_streams(
    fixture: str, text: str, finish_reason: str, input_tokens: int, output_tokens: int
) -> None:
    # These recordings end without the blank line that would dispatch message_stop, so the
    # stream ends right after the stop reason: that counts as final.
    response = await through(decode((FIXTURES / "anthropic-sdk-python" / fixture).read_bytes()))
    assert response.text == text and response.complete and response.finish_reason == finish_reason
    # usage as message_start gives it, with message_delta's final output count
    assert response.stats.usage is not None
    assert (response.stats.usage["input_tokens"], response.stats.usage["output_tokens"]) == (
        input_tokens,
        output_tokens,
    )


@pytest.mark.network
async def test_5xx_is_retried() -> None:
    attempts = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        attempts.append(1)
        if len(attempts) == 1:
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            writer.write(
                b'data: {"choices": [{"index": 0, "delta": {"content": "back"}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
            )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    clock = rxstream.VirtualClock()
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        response = await rxstream.stream_sse(url, request={}, clock=clock)
    finally:
        server.close()
        await server.wait_closed()
    assert response.text == "back" and response.stats.retries == 1 and clock.sleeps == [1.0]


@pytest.mark.network
async def test_recorded_stream_served_over_http() -> None:
    raw = (FIXTURES / "openai-python" / "chat-completions-plain-text.sse").read_bytes()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        for i in range(0, len(raw), 100):  # in pieces, as a network delivers it
            writer.write(raw[i : i + 100])
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        response = await rxstream.stream_sse(url, request=rxstream.chat_request("gpt-4o", "weather?"))
    finally:
        server.close()
        await server.wait_closed()
    assert response.text == PLAIN and response.finish_reason == "stop"


def reference(faults: str = "", **options: Any) -> ReferenceSSEServer:
    return ReferenceSSEServer(
        options.pop("text", TEXT),
        chunk_size=options.pop("chunk_size", 12),
        token=TOKEN,
        faults=Faults.parse(faults),
        **options,
    )


def client(**options: Any) -> dict[str, Any]:
    return {"token": TOKEN, "request": rxstream.chat_request("m", "hi"), "clock": rxstream.VirtualClock(), **options}


async def piped(url: str, **options: Any) -> tuple[rxstream.Response, list[int]]:
    seen: list[int] = []

    def note(chunk: rxstream.Chunk) -> None:
        seen.append(chunk.index)

    response = await rxstream.from_sse(url, **options).pipe(
        rxo.parse_sse(), rxo.reorder(), rxo.backpressure_buffer(), ops.do_action(note), rxo.accumulate(), rxo.finalize()
    )
    return response, seen


@pytest.mark.network
@pytest.mark.parametrize(
    ("faults", "retries"),
    [
        ("", 0),
        ("delay=0.0005,jitter=0.001", 0),
        ("abort_after=30", 1),
        ("reject_first=2", 2),
        ("jitter=0.0005,abort_after=60,reject_first=1,seed=4", 2),
    ],
)
async def test_faults_reassemble_exactly_once(faults: str, retries: int) -> None:
    async with reference(faults, reasoning="first I think, 然后我想") as server:
        response, seen = await piped(server.url, **client())
    assert response.text == TEXT and response.reasoning == "first I think, 然后我想" and response.complete
    assert seen == list(range(server.count + 2))  # content, usage and [DONE]: every index once, in order
    assert response.stats.retries == retries and response.stats.usage is not None


@pytest.mark.parametrize("faults", ["reorder=6", "duplicate=0.4", "drop=2"])
def test_the_reference_server_refuses_faults_an_sse_body_cannot_have(faults: str) -> None:
    with pytest.raises(ValueError, match="cannot happen to an SSE body"):
        reference(faults)


@pytest.mark.network
async def test_last_event_id_resumes_where_reorder_needs() -> None:
    async with reference("abort_after=40") as server:
        response, _ = await piped(server.url, **client())
    assert response.text == TEXT and server.stats.resumed_from == 40 and response.stats.duplicates == 0


@pytest.mark.network
async def test_reasoning_is_kept_apart() -> None:
    async with reference(text="The answer is 4.", reasoning="2 + 2: add them.") as server:
        response = await rxstream.stream_sse(server.url, **client())
    assert response.text == "The answer is 4." and response.reasoning == "2 + 2: add them."
    assert [part.kind for part in response.parts] == ["reasoning", "text"]


@pytest.mark.network
async def test_retry_after_is_honoured_and_the_schedule_is_kept() -> None:
    clock = rxstream.VirtualClock()
    async with reference("reject_first=2") as server:
        await rxstream.stream_sse(server.url, **client(clock=clock, retry=rxstream.RetryPolicy(initial=0.25)))
    assert clock.sleeps == [1.0, 1.0]  # the server's Retry-After: 1, not the policy's 0.25, 0.5
    async with reference("reject_first=2") as server:
        await rxstream.stream_sse(server.url, **client(clock=clock))
    assert clock.sleeps[2:] == [1.0, 2.0]  # the policy's 1, 2: never sooner than the server asks, and still exponential


@pytest.mark.network
async def test_without_ids_a_drop_fails_with_the_partial_unless_replay_is_deterministic() -> None:
    async with reference("abort_after=20", ids=False) as server:
        with pytest.raises(rxstream.StreamError) as caught:
            await rxstream.stream_sse(server.url, **client())
        assert isinstance(caught.value, rxstream.ConnectionLostError)
        assert "no id to resume from" in str(caught.value)
        assert partial_of(caught.value).text == TEXT[: 20 * 12]
    async with reference("abort_after=20", ids=False) as server:
        response, seen = await piped(server.url, **client(replay="deterministic"))
    assert response.text == TEXT and seen == list(range(server.count + 2))


@pytest.mark.network
async def test_bad_token_is_an_authentication_error_without_the_token() -> None:
    async with reference() as server:
        with pytest.raises(rxstream.StreamError) as caught:
            await rxstream.stream_sse(server.url, **client(token="sk-secret-value"))
    assert isinstance(caught.value, rxstream.AuthenticationError)
    assert "sk-secret-value" not in str(caught.value) + repr(caught.value)


@pytest.mark.network
async def test_malformed_event_is_a_frame_error_with_the_prefix() -> None:
    async with reference("malformed_at=15") as server:
        with pytest.raises(rxstream.StreamError) as caught:
            await rxstream.stream_sse(server.url, **client())
    assert isinstance(caught.value, rxstream.FrameError) and partial_of(caught.value).text == TEXT[: 15 * 12]


@pytest.mark.network
async def test_oversize_event_ends_the_stream() -> None:
    async with reference("oversize_at=10,oversize_bytes=100000") as server:
        with pytest.raises(rxstream.StreamError) as caught:
            await rxstream.stream_sse(server.url, **client(max_size=65536))
    assert isinstance(caught.value, rxstream.FrameTooLargeError) and partial_of(caught.value).text == TEXT[: 10 * 12]


@pytest.mark.network
async def test_stall_times_out() -> None:
    async with reference("stall_after=5") as server:
        with pytest.raises(rxstream.StreamError) as caught:
            await rxstream.stream_sse(server.url, **client(stream_timeout=0.2))
    assert isinstance(caught.value, rxstream.StreamTimeoutError) and partial_of(caught.value).text == TEXT[: 5 * 12]


@pytest.mark.network
async def test_lost_for_good() -> None:
    async with reference("abort_after=0,repeat=0") as server:
        with pytest.raises(rxstream.StreamError) as caught:
            await rxstream.stream_sse(server.url, **client())
    assert isinstance(caught.value, rxstream.ConnectionLostError) and partial_of(caught.value).stats.retries == 3
    assert partial_of(caught.value).text == "" and server.stats.connections == 4


@pytest.mark.network
async def test_a_full_buffer_stops_reading_the_body() -> None:
    async with reference(text="y" * 16_000_000, chunk_size=4000) as server:  # more than the socket buffers hold
        iterator = rxstream.to_async_iterable(
            rxstream.from_sse(server.url, **client()).pipe(rxo.parse_sse(), rxo.reorder(), rxo.backpressure_buffer(3))
        )
        first = [await anext(iterator) for _ in range(2)]
        for _ in range(50):
            await asyncio.sleep(0.005)
        assert [c.index for c in first] == [0, 1] and server.stats.frames_sent < 2000
        await iterator.aclose()


@pytest.mark.network
async def test_connect_sse_from_the_command_line() -> None:
    import os
    import sys

    async with reference(text="hello from the command line", reasoning="hmm") as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rxstream",
            "connect",
            server.url,
            "--sse",
            "--model",
            "m",
            "--prompt",
            "hi",
            "--token-env",
            "SSE_TOKEN",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "SSE_TOKEN": TOKEN},
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    import orjson

    document = orjson.loads(out)
    assert document["text"] == "hello from the command line" and document["reasoning"] == "hmm"
    assert document["stats"]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize(
    "event, field",
    [
        ({"choices": [{"index": 0, "delta": [1]}]}, "delta"),
        ({"choices": [{"index": 0, "delta": "text"}]}, "delta"),
        ({"type": "content_block_delta", "index": 0, "delta": ["text_delta"]}, "delta"),
        ({"type": "content_block_start", "index": 0, "content_block": 7}, "content_block"),
        ({"type": "message_start", "message": None}, "message"),
        ({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": [3]}, "usage"),
    ],
)
async def test_a_field_that_must_be_an_object_and_is_not_is_a_frame_error(event: dict[str, Any], field: str) -> None:
    events = [SSEEvent(data=orjson.dumps({"choices": [{"index": 0, "delta": {"content": "kept"}}]}).decode())]
    if "type" in event:
        events = [
            SSEEvent(
                data=orjson.dumps(
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "kept"}}
                ).decode()
            )
        ]
    events.append(SSEEvent(data=orjson.dumps(event).decode()))
    with pytest.raises(rxstream.StreamError) as caught:
        await rxstream.from_frames(events).pipe(rxstream.sse_pipeline())
    error = caught.value
    assert isinstance(error, rxstream.FrameError) and error.number == 2
    assert f"field '{field}' must be an object" in error.reason
    assert partial_of(caught.value).text == "kept"
