"""Tool calls, refusals and thinking: the recorded real streams give exactly their README's result,
whole and cut anywhere, in memory and over HTTP; the streaming view; partial JSON; reorder and resumption."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo
from rxstream.core._values import Chunk, ToolCallFragment
from rxstream.operators._accumulate import Delta
from rxstream.protocol._sse import SSEDecoder, SSEEvent

from .support import FIXTURES


@dataclass(frozen=True)
class Expected:
    """A fixture's result as its README gives it."""

    text: str
    finish_reason: str
    usage: dict[str, int]
    tool_calls: tuple[tuple[int, str, str, str], ...] = ()
    refusal: str | None = None
    reasoning: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


TAX_TEXT = (
    "I'll create a comprehensive tax guide for someone with multiple W2s and save it in a file called taxes.txt. "
    "Let me do that for you now."
)
EXPECTED = {
    "openai-python/chat-completions-tool-call.sse": Expected(
        "",
        "tool_calls",
        {"prompt_tokens": 48, "completion_tokens": 19, "total_tokens": 67},
        ((0, "call_CTf1nWJLqSeRgDqaCG27xZ74", "get_weather", '{"city":"San Francisco","state":"CA"}'),),
    ),
    "openai-python/chat-completions-parallel-tool-calls.sse": Expected(
        "",
        "tool_calls",
        {"prompt_tokens": 149, "completion_tokens": 60, "total_tokens": 209},
        (
            (
                0,
                "call_JMW1whyEaYG438VE1OIflxA2",
                "GetWeatherArgs",
                '{"city": "Edinburgh", "country": "GB", "units": "c"}',
            ),
            (1, "call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", '{"ticker": "AAPL", "exchange": "NASDAQ"}'),
        ),
    ),
    "openai-python/chat-completions-refusal.sse": Expected(
        "",
        "stop",
        {"prompt_tokens": 79, "completion_tokens": 11, "total_tokens": 90},
        refusal="I'm sorry, I can't assist with that request.",
    ),
    "anthropic-sdk-python/tool_use_response.txt": Expected(
        "I'll check the current weather in Paris for you.",
        "tool_use",
        {"input_tokens": 377, "output_tokens": 65},
        ((1, "toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", '{"location": "Paris"}'),),
    ),
    "anthropic-sdk-python/incomplete_partial_json_response.txt": Expected(
        TAX_TEXT,
        "max_tokens",
        {"input_tokens": 450, "output_tokens": 124},
    ),
}


def decode(raw: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in sorted(cuts) + [len(raw)]:
        events += decoder.feed(raw[start:cut])
        start = cut
    return events


def check(response: rxstream.Response, expected: Expected) -> None:
    assert response.complete and response.text == expected.text and response.finish_reason == expected.finish_reason
    assert response.refusal == expected.refusal and response.reasoning == expected.reasoning
    assert response.stats.usage is not None
    assert {name: response.stats.usage[name] for name in expected.usage} == expected.usage
    if expected.tool_calls:
        assert [(c.index, c.id, c.name, c.arguments) for c in response.tool_calls] == list(expected.tool_calls)
        assert all(isinstance(call.parsed(), dict) for call in response.tool_calls)


async def in_memory(events: list[SSEEvent]) -> rxstream.Response:
    return await finished(rxstream.from_frames(events).pipe(rxstream.sse_pipeline()))


async def finished(response: Observable[rxstream.Response]) -> rxstream.Response:
    return await response


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
@given(cuts=st.lists(st.integers(0, 8000), max_size=20))
@settings(max_examples=40, deadline=None)
def test_recorded_streams_give_the_readme_result_cut_anywhere(fixture: str, cuts: list[int]) -> None:
    raw = (FIXTURES / fixture).read_bytes()
    check(asyncio.run(in_memory(decode(raw, [cut % (len(raw) + 1) for cut in cuts]))), EXPECTED[fixture])


async def serve(raw: bytes, pieces: list[int]) -> tuple[asyncio.Server, str]:
    """An independent SSE endpoint: the recorded body, written in pieces of the given sizes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        start = 0
        for size in pieces:
            writer.write(raw[start : start + size])
            await writer.drain()
            start += size
        writer.write(raw[start:])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"


async def over_http(raw: bytes, pieces: list[int]) -> rxstream.Response:
    server, url = await serve(raw, pieces)
    try:
        return await asyncio.wait_for(rxstream.stream_sse(url, request=rxstream.chat_request("m", "weather?")), 30)
    finally:
        server.close()
        await server.wait_closed()


# The Anthropic recordings end without the blank line that dispatches message_stop: over HTTP the
# body ends after the stop reason, which parse_sse takes as final (Resume.finished).
@pytest.mark.network
@pytest.mark.parametrize("fixture", sorted(EXPECTED))
@given(pieces=st.lists(st.integers(1, 600), max_size=12))
@settings(max_examples=8, deadline=None)
def test_recorded_streams_over_http_through_stream_sse(fixture: str, pieces: list[int]) -> None:
    check(asyncio.run(over_http((FIXTURES / fixture).read_bytes(), pieces)), EXPECTED[fixture])


def test_incomplete_arguments_say_where_and_parse_partially() -> None:
    # anthropic's SDK expects 4 complete lines_of_text items, the unfinished "Filing taxes" dropped
    response = asyncio.run(
        in_memory(decode((FIXTURES / "anthropic-sdk-python/incomplete_partial_json_response.txt").read_bytes(), []))
    )
    (call,) = response.tool_calls
    assert (call.index, call.name, call.id) == (1, "make_file", "toolu_01EKqbqmZrGRXy18eN7m9kvY")
    with pytest.raises(rxstream.InvalidJSONError) as caught:
        call.parsed()
    assert caught.value.position == len(call.arguments) and "make_file" in str(caught.value)
    assert "EOF while parsing" in caught.value.reason  # jiter's words: one reader for parsed() and partial()
    partial = call.partial()
    assert partial["filename"] == "taxes.txt" and len(partial["lines_of_text"]) == 4
    assert partial["lines_of_text"][0] == "# COMPREHENSIVE TAX GUIDE FOR INDIVIDUALS WITH MULTIPLE W-2s"
    assert call.partial(trailing_strings=True)["lines_of_text"][-1] == "Filing taxes"
    assert rxstream.partial_json(call.arguments) == partial


def test_arguments_that_are_not_an_object_are_a_typed_error() -> None:
    call = rxstream.ToolCall(0, "call_1", "f", "[1, 2]")
    with pytest.raises(rxstream.InvalidJSONError) as caught:
        call.parsed()
    assert caught.value.position is None and "not an object" in caught.value.reason
    with pytest.raises(rxstream.InvalidJSONError):
        rxstream.ToolCall(0, "call_1", "f", '{"a": }').partial()
    assert rxstream.ToolCall(0, "call_1", "f", "").parsed() == {} and rxstream.partial_json("  ") is None


def test_the_streaming_view_shows_each_call_start_and_its_arguments_grow() -> None:
    events = decode((FIXTURES / "openai-python/chat-completions-parallel-tool-calls.sse").read_bytes(), [])
    started: list[tuple[int, str]] = []
    grown: dict[int, str] = {}
    partials: list[dict[str, Any]] = []

    def show(delta: Delta) -> None:
        for fragment in delta.tool_calls:
            if fragment.name is not None:
                started.append((fragment.index, fragment.name))
            grown[fragment.index] = grown.get(fragment.index, "") + fragment.arguments
            # the transcript's snapshot, as the stream goes: what has arrived of the arguments, parsed as far as it goes
            so_far = {call.index: call for call in delta.transcript.tool_calls}[fragment.index]
            assert so_far.arguments == grown[fragment.index]
            partials.append(so_far.partial())

    response = asyncio.run(
        finished(
            rxstream.from_frames(events).pipe(rxo.parse_sse(), rxo.accumulate(), ops.do_action(show), rxo.finalize())
        )
    )
    assert started == [(0, "GetWeatherArgs"), (1, "get_stock_price")]
    assert grown == {call.index: call.arguments for call in response.tool_calls}
    assert {"city": "Edinb"} not in partials and {"city": "Edinburgh"} in partials  # an unfinished string is left out


def test_anthropic_thinking_goes_into_the_reasoning_with_its_signature() -> None:
    raw = b"".join(
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"
        for kind, body in [
            ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "2 + 2 "}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "is 4"}},
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"},
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Four."}},
            ),
            (
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}},
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )
    response = asyncio.run(in_memory(decode(raw, [])))
    assert (
        response.text == "Four."
        and response.reasoning == "2 + 2 is 4"
        and response.reasoning_signatures == ("EqQBCgIYAhIM",)
    )
    assert [part.kind for part in response.parts] == ["reasoning", "text"] and response.finish_reason == "end_turn"
    assert response.stats.usage == {"input_tokens": 9, "output_tokens": 7}


@pytest.mark.parametrize(
    ("delta", "field_name"),
    [
        ({"tool_calls": [{"function": {"arguments": "{}"}}]}, "tool_calls[].index"),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 5}}]}, "function.arguments"),
        ({"tool_calls": {"index": 0}}, "delta.tool_calls"),
        ({"refusal": ["no"]}, "delta.refusal"),
    ],
)
def test_a_malformed_tool_call_or_refusal_is_a_frame_error_naming_the_field(
    delta: dict[str, Any], field_name: str
) -> None:
    event = SSEEvent(orjson.dumps({"choices": [{"index": 0, "delta": delta}]}).decode())
    with pytest.raises(rxstream.FrameError) as caught:
        asyncio.run(in_memory([event]))
    assert field_name in str(caught.value) and caught.value.partial is not None


def tool_call_chunks() -> list[Chunk]:
    """Two interleaved calls, a refusal and text, as chunks 0..n-1 (the last final)."""
    pieces: list[dict[str, Any]] = [
        {"tool_calls": (ToolCallFragment(0, "call_a", "lookup", '{"q": '),)},
        {"tool_calls": (ToolCallFragment(1, "call_b", "fetch", ""),)},
        {"tool_calls": (ToolCallFragment(1, None, None, '{"url": "https://ex'),)},
        {"data": "looking"},
        {"tool_calls": (ToolCallFragment(0, None, None, '"tides"}'), ToolCallFragment(1, None, None, 'ample.org"}'))},
        {"refusal": "not that one"},
        {"finish_reason": "tool_calls", "usage": {"total_tokens": 5}},
    ]
    return [Chunk(i, **piece) for i, piece in enumerate(pieces)] + [Chunk(len(pieces), "", True)]


@given(st.permutations(range(8)), st.lists(st.integers(0, 7), max_size=6))
def test_reorder_and_duplicates_keep_tool_calls_exactly_once(order: list[int], resent: list[int]) -> None:
    chunks = tool_call_chunks()
    arrivals = [chunks[i] for i in order] + [chunks[i] for i in resent]
    outcome = asyncio.run(
        finished(
            rxstream.from_frames(arrivals).pipe(
                rxo.reorder(window=16), rxo.backpressure_buffer(2), rxo.accumulate(), rxo.finalize()
            )
        )
    )
    assert [(c.id, c.name, c.parsed()) for c in outcome.tool_calls] == [
        ("call_a", "lookup", {"q": "tides"}),
        ("call_b", "fetch", {"url": "https://example.org"}),
    ]
    assert outcome.text == "looking" and outcome.refusal == "not that one" and outcome.finish_reason == "tool_calls"


@pytest.mark.network
async def test_a_dropped_connection_resumes_a_tool_call_exactly_once() -> None:
    """An independent endpoint that numbers its events, drops the first connection in the middle
    of the arguments, and resumes after Last-Event-ID."""
    raw = (FIXTURES / "openai-python/chat-completions-parallel-tool-calls.sse").read_bytes()
    first, *events = [block for block in raw.split(b"\n\n") if block.strip()]
    assert (
        b'"delta":{"role":"assistant","content":null}' in first
    )  # carries nothing: every event numbered carries a chunk
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head)
        resume = next(
            (
                int(line.split(b":")[1]) + 1
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"last-event-id:")
            ),
            0,
        )
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        for number in range(resume, len(events)):
            if len(requests) == 1 and number == 9:
                writer.transport.abort()  # mid-arguments of the first call
                return
            writer.write(b"id: %d\n%s\n\n" % (number, events[number]))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        response = await asyncio.wait_for(rxstream.stream_sse(url, request={}, clock=rxstream.VirtualClock()), 30)
    finally:
        server.close()
        await server.wait_closed()
    check(response, EXPECTED["openai-python/chat-completions-parallel-tool-calls.sse"])
    assert response.stats.retries == 1 and len(requests) == 2 and response.stats.duplicates == 0


async def connect_sse(raw: bytes, *options: str) -> str:
    """``rxstream connect --sse`` as a subprocess, against an independent endpoint serving ``raw``."""
    server, url = await serve(raw, [50] * 20)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rxstream",
            "connect",
            url,
            "--sse",
            "--model",
            "m",
            "--prompt",
            "hi",
            *options,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        server.close()
        await server.wait_closed()
    assert process.returncode == 0, err
    return out.decode()


@pytest.mark.network
async def test_connect_sse_shows_tool_calls_as_they_stream_and_in_its_json() -> None:
    raw = (FIXTURES / "openai-python/chat-completions-parallel-tool-calls.sse").read_bytes()
    live = await connect_sse(raw)
    assert '[tool call GetWeatherArgs] {"city": "Edinburgh", "country": "GB", "units": "c"}' in live
    assert '[tool call get_stock_price] {"ticker": "AAPL", "exchange": "NASDAQ"}' in live
    document = orjson.loads(await connect_sse(raw, "--json"))
    assert [(c["index"], c["id"], c["name"]) for c in document["tool_calls"]] == [
        (0, "call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs"),
        (1, "call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price"),
    ]
    assert document["finish_reason"] == "tool_calls" and document["refusal"] is None


@pytest.mark.network
async def test_connect_sse_shows_a_refusal() -> None:
    raw = (FIXTURES / "openai-python/chat-completions-refusal.sse").read_bytes()
    assert "[refusal] I'm sorry, I can't assist with that request." in await connect_sse(raw)
    assert orjson.loads(await connect_sse(raw, "--json"))["refusal"] == "I'm sorry, I can't assist with that request."
