"""from_sse against SSE servers we did not write: a few lines of raw asyncio HTTP/1.1 in each test.

The reference server numbers its events from 0 with an ``id:`` on each, which hid that ids
were taken for chunk indices; the peers here use ids as real servers do (or not at all),
end their bodies as real servers do, and count the POSTs they answer, each of which is a
completion billed on a paid API.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo
from rxstream.protocol._sse import SSEEvent

from .support import FIXTURES, decode, loopback, partial_of, read_request, send_in_pieces

RECORDED = sorted(FIXTURES.glob("*/*.sse")) + sorted(FIXTURES.glob("anthropic-sdk-python/*.txt"))
WORDS = ["The ", "answer ", "is ", "forty-", "two."]
PIECE = 7  # bytes a write: events cut across reads, as a network cuts them


@dataclass
class Peer:
    url: str
    posts: list[dict[str, str]] = field(default_factory=list)  # the headers of each POST, in order


Respond = Callable[[int, dict[str, str]], bytes]  # (POST number from 0, its headers) -> the body


@asynccontextmanager
async def serve(respond: Respond, *, chunked: bool, cut_short: bool = False) -> AsyncIterator[Peer]:
    """An SSE endpoint in raw asyncio: a chunked body, or one that ends when the connection closes;
    ``cut_short``, a chunked body whose connection is aborted before its last chunk."""
    peer = Peer("")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, headers, _ = await read_request(reader)
        if line.startswith("POST "):
            peer.posts.append(headers)
        body = respond(len(peer.posts) - 1, headers)
        framing = "Transfer-Encoding: chunked" if chunked else "Connection: close"
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{framing}\r\n\r\n".encode())
        await send_in_pieces(writer, body, PIECE, chunked=chunked)
        if cut_short:
            writer.transport.abort()  # an "incomplete chunked read" for the client
            return
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with loopback(handle) as origin:
        peer.url = origin + "/v1/chat/completions"
        yield peer


def delta(content: str | None = None, finish_reason: str | None = None, role: str | None = None) -> str:
    """One OpenAI chat.completion.chunk, as the data of an event."""
    piece = {key: value for key, value in (("role", role), ("content", content)) if value is not None}
    choice = {"index": 0, "delta": piece, "finish_reason": finish_reason}
    return orjson.dumps({"id": "chatcmpl-peer", "object": "chat.completion.chunk", "choices": [choice]}).decode()


def events(pairs: Sequence[tuple[str | None, str]], ending: str = "\n") -> bytes:
    """An event stream: each pair is (the ``id:`` line's value or None for no id line, the data)."""
    lines = []
    for event_id, data in pairs:
        lines += ([f"id: {event_id}"] if event_id is not None else []) + [f"data: {data}", ""]
    return "".join(line + ending for line in lines).encode()


def answer() -> list[str]:
    """The answer's events: the words, the last with finish_reason "stop"."""
    return [delta(word, "stop" if i == len(WORDS) - 1 else None) for i, word in enumerate(WORDS)]


BODIES = {
    "ids from 1": events([(str(i + 1), data) for i, data in enumerate([*answer(), "[DONE]"])]),
    "a role-only first event with id 0": events(
        [(str(i), data) for i, data in enumerate([delta("", role="assistant"), *answer(), "[DONE]"])]
    ),
    "[DONE] without an id line": events([*((str(i), data) for i, data in enumerate(answer())), (None, "[DONE]")]),
    "the same id on every event": events([("7", data) for data in [*answer(), "[DONE]"]]),
    "ids that are timestamps": events(
        [(str(1_733_200_000_000 + 250 * i), data) for i, data in enumerate([*answer(), "[DONE]"])]
    ),
    "no [DONE] after the finish reason": events([(None, data) for data in answer()]),
    "CR line ends, no [DONE]": events([(None, data) for data in answer()], "\r"),
    "CR line ends, ids from 1": events([(str(i + 1), data) for i, data in enumerate([*answer(), "[DONE]"])], "\r"),
}


def client(**options: Any) -> dict[str, Any]:
    return {"request": rxstream.chat_request("m", "hi"), "clock": rxstream.VirtualClock(), **options}


@pytest.mark.network
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_valid_streams_complete_with_one_request(body: bytes, chunked: bool) -> None:
    async with serve(lambda number, headers: body, chunked=chunked) as peer:
        response = await asyncio.wait_for(rxstream.stream_sse(peer.url, **client()), 10)
    assert response.text == "".join(WORDS) and response.complete and response.finish_reason == "stop"
    assert len(peer.posts) == 1 and response.stats.retries == 0


async def in_memory(raw: bytes) -> rxstream.Response:
    response: rxstream.Response = await rxstream.from_frames(decode(raw)).pipe(rxstream.sse_pipeline())
    return response


ANTHROPIC = [
    ("basic_response.txt", "Hello there!", "end_turn"),
    (
        "incomplete_partial_json_response.txt",
        "I'll create a comprehensive tax guide for someone with multiple W2s and save it in a file called "
        "taxes.txt. Let me do that for you now.",
        "max_tokens",
    ),
    ("tool_use_response.txt", "I'll check the current weather in Paris for you.", "tool_use"),
]


@pytest.mark.network
@pytest.mark.parametrize("framing", ["chunked", "close-delimited", "cut short"])
@pytest.mark.parametrize(("fixture", "text", "stop_reason"), ANTHROPIC, ids=[name for name, _, _ in ANTHROPIC])
async def test_recorded_anthropic_streams_served_as_their_bytes(
    fixture: str, text: str, stop_reason: str, framing: str
) -> None:
    # They end without a newline after message_stop, which is therefore never dispatched:
    # the body ends right after message_delta and its stop reason, which counts as final; so does
    # a connection broken there, before the body's last chunk ("incomplete chunked read", as
    # https://github.com/kortix-ai/suna/issues/66 reports of Anthropic streams).
    raw = (FIXTURES / "anthropic-sdk-python" / fixture).read_bytes()
    cut_short = framing == "cut short"
    async with serve(lambda number, headers: raw, chunked=framing != "close-delimited", cut_short=cut_short) as peer:
        response = await asyncio.wait_for(rxstream.stream_sse(peer.url, **client()), 10)
    assert response.text == text and response.complete and response.finish_reason == stop_reason
    assert len(peer.posts) == 1 and response.stats.retries == 0
    expected = await in_memory(raw)  # the same bytes through from_frames: the same answer
    assert (response.text, response.finish_reason, response.stats.usage, response.stats.chunks) == (
        expected.text,
        expected.finish_reason,
        expected.stats.usage,
        expected.stats.chunks,
    )


ID_SCHEMES: dict[str, Callable[[int], str | None]] = {
    "none": lambda i: None,
    "from 0": str,
    "from 1": lambda i: str(i + 1),
    "the same": lambda i: "7",
    "timestamps": lambda i: str(1_733_200_000_000 + 250 * i),
    "empty": lambda i: "",
}


@pytest.mark.network
@given(
    pieces=st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=8), min_size=1, max_size=8),
    ids=st.sampled_from(list(ID_SCHEMES)),
    role_first=st.booleans(),
    usage=st.booleans(),
    done=st.sampled_from(["with its id", "without an id line", "none"]),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
    chunked=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_any_valid_stream_gives_its_text_with_one_request(
    pieces: list[str], ids: str, role_first: bool, usage: bool, done: str, ending: str, chunked: bool
) -> None:
    datas = [delta(piece, "stop" if i == len(pieces) - 1 else None) for i, piece in enumerate(pieces)]
    datas = [delta("", role="assistant")] * role_first + datas
    datas += ['{"choices": [], "usage": {"total_tokens": 3}}'] * usage + ["[DONE]"] * (done != "none")
    pairs = [(ID_SCHEMES[ids](i), data) for i, data in enumerate(datas)]
    if done == "without an id line":
        pairs[-1] = (None, "[DONE]")
    body = events(pairs, ending)

    async def run() -> tuple[rxstream.Response, int]:
        async with serve(lambda number, headers: body, chunked=chunked) as peer:
            response = await asyncio.wait_for(rxstream.stream_sse(peer.url, **client()), 10)
        return response, len(peer.posts)

    response, posts = asyncio.run(run())
    assert response.text == "".join(pieces) and response.complete and response.finish_reason == "stop"
    assert posts == 1 and (response.stats.usage is not None) == usage


RESUMABLE = [(str(i + 1), data) for i, data in enumerate([delta("", role="assistant"), *answer(), "[DONE]"])]


@pytest.mark.network
@pytest.mark.parametrize("torn", [False, True], ids=["after an event", "inside an event"])
async def test_last_event_id_resumes_after_the_last_event_received(torn: bool) -> None:
    # Ids from 1, a role-only event that makes no chunk: the chunk positions go on across the
    # reconnection from where the first body stopped, whatever the ids are.
    whole = events(RESUMABLE)
    first = events(RESUMABLE[:3])
    if torn:
        first += events(RESUMABLE[3:4])[:20]  # the body ends in the next event, after its id line

    def respond(number: int, headers: dict[str, str]) -> bytes:
        if number == 0:
            return first
        after = headers.get("last-event-id")
        return events(RESUMABLE[[event_id for event_id, _ in RESUMABLE].index(after) + 1 :]) if after else whole

    async with serve(respond, chunked=True) as peer:
        response = await asyncio.wait_for(rxstream.stream_sse(peer.url, **client()), 10)
    assert response.text == "".join(WORDS) and response.complete and response.stats.duplicates == 0
    assert [headers.get("last-event-id") for headers in peer.posts] == [None, "3"]
    assert response.stats.retries == 1


@pytest.mark.network
@pytest.mark.parametrize(
    "pairs",
    [[(None, data) for data in answer()[:3]], [("", data) for data in answer()[:3]]],
    ids=["no ids", "an empty id (which resets it)"],
)
async def test_a_stream_that_cannot_be_resumed_is_not_requested_again(pairs: list[tuple[str | None, str]]) -> None:
    async with serve(lambda number, headers: events(pairs), chunked=True) as peer:
        with pytest.raises(rxstream.StreamError) as caught:
            await asyncio.wait_for(rxstream.stream_sse(peer.url, **client()), 10)
    assert len(peer.posts) == 1 and isinstance(caught.value, rxstream.ConnectionLostError)
    assert partial_of(caught.value).text == "".join(WORDS[:3])  # nothing received is lost
    # Only the caller can say that a new request sends the same events again.
    whole = events([(pairs[0][0], data) for data in answer()])
    async with serve(lambda number, headers: events(pairs) if number == 0 else whole, chunked=True) as peer:
        response = await asyncio.wait_for(rxstream.stream_sse(peer.url, **client(replay="deterministic")), 10)
    assert response.text == "".join(WORDS) and len(peer.posts) == 2 and "last-event-id" not in peer.posts[1]


def by_id(event: SSEEvent) -> rxstream.Chunk:
    """A parser of the kind parse_sse no longer is: the event's id as the chunk's index."""
    return rxstream.Chunk(int(event.id or "0"), event.data, event.data == "[DONE]")


@pytest.mark.network
async def test_a_gap_reorder_cannot_close_is_an_error_not_a_new_request() -> None:
    # A server resumes after an event id, not from a chunk index: nothing could ask for the gap.
    body = events([("0", "a"), ("5", "b"), ("6", "[DONE]")])
    async with serve(lambda number, headers: body, chunked=True) as peer:
        source = rxstream.from_sse(peer.url, **client())
        with pytest.raises(rxstream.StreamError) as caught:
            await asyncio.wait_for(
                source.pipe(ops.map(by_id), rxo.reorder(window=2), rxo.accumulate(), rxo.finalize()), 10
            )
    assert isinstance(caught.value, rxstream.InvalidChunkError) and caught.value.code == 40002
    assert partial_of(caught.value).text == "a" and len(peer.posts) == 1


def test_the_end_of_input_ends_a_pending_line_and_no_event() -> None:
    # WHATWG: a CR ends a line, even the last one; an event not ended by a blank line is
    # discarded at the end of the input.
    assert decode(b"data: a\r\rdata: b\r\r") == [SSEEvent("a"), SSEEvent("b")]
    assert decode(b"data: a\r\rdata: b\r") == [SSEEvent("a")]
    assert decode(b"data: a\n\ndata: b") == [SSEEvent("a")]
    assert decode(b"id: 4\rdata: a\r\r", [13]) == [SSEEvent("a", id="4")]
    assert decode(b"\xef\xbb") == []


@given(st.data())
def test_any_split_of_a_recorded_stream_with_any_line_end_decodes_as_the_whole(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(RECORDED), label="fixture")
    lf = path.read_bytes()
    raw = lf.replace(b"\n", data.draw(st.sampled_from([b"\n", b"\r\n", b"\r"]), label="line end"))
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="cuts")
    assert decode(raw, cuts) == decode(lf)


def gzipped(body: bytes, *, per_event: bool) -> bytes:
    """``body`` gzip-compressed: flushed after each event (as a proxy compressing a live stream
    does, so that each event can be read at once) or compressed whole."""
    compressor = zlib.compressobj(wbits=31)  # 31: the gzip container
    if not per_event:
        return compressor.compress(body) + compressor.flush()
    pieces = [
        compressor.compress(event + b"\n\n") + compressor.flush(zlib.Z_SYNC_FLUSH) for event in body.split(b"\n\n")[:-1]
    ]
    return b"".join(pieces) + compressor.flush()


# Issue 25 §8: gateways and proxies (nginx's gzip, Cloudflare) compress event streams with
# Content-Encoding: gzip; the openai SDK reads them through httpx's decoding, as rxstream does.
@pytest.mark.network
@pytest.mark.parametrize("per_event", [True, False], ids=["flushed per event", "compressed whole"])
async def test_a_gzip_body_read_a_byte_at_a_time_gives_the_whole_answer_with_one_request(per_event: bool) -> None:
    body = gzipped(events([(None, data) for data in [*answer(), "[DONE]"]]), per_event=per_event)
    posts = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal posts
        await read_request(reader)
        posts += 1
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        await send_in_pieces(writer, body, 1, chunked=True)  # one byte an HTTP chunk
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with loopback(handle) as origin:
        response = await asyncio.wait_for(rxstream.stream_sse(origin + "/v1/chat/completions", **client()), 10)
    assert response.text == "".join(WORDS) and response.complete and response.finish_reason == "stop"
    assert posts == 1
