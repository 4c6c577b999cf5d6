"""stream_responses against a Responses endpoint written here in raw asyncio HTTP/1.1, not rxstream.server.

The peer records every request: a POST creates a (paid) response, a GET with
``starting_after`` resumes a background one. It drops connections mid-stream, resends and
reorders events, ends lines with CR, omits the final event, and answers 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

import rxstream
from tests.responses_events import FunctionCall, Message, Reasoning, response_events, sse_body
from tests.support import loopback, partial_of, read_request, send_in_pieces

pytestmark = pytest.mark.network  # every test here talks to a peer on 127.0.0.1

PIECE = 9  # bytes a write: events cut across reads, as a network cuts them
ITEMS = (
    Reasoning((("Let me ", "think."),)),
    Message(("The ", "answer ", "is ", "forty-", "two.")),
    FunctionCall("call_1", "lookup", ('{"q": ', '"42"}')),
)
USAGE = {"input_tokens": 5, "output_tokens": 9, "total_tokens": 14}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """What the peer answers: a status, and for a 200 the events, cut off after ``drop_after`` of them."""

    events: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # events sent before the connection is reset; None: the body ends properly
    line_end: bytes = b"\n"
    stall: bool = False  # after the events: silent, the body neither ended nor reset, until the client leaves


@dataclass
class Peer:
    url: str = ""
    requests: list[Request] = field(default_factory=list)

    @property
    def posts(self) -> list[Request]:
        return [request for request in self.requests if request.method == "POST"]

    @property
    def gets(self) -> list[Request]:
        return [request for request in self.requests if request.method == "GET"]


Respond = Callable[[Request, int], Reply]  # (the request, how many came before it) -> the reply


@asynccontextmanager
async def serve(respond: Respond) -> AsyncIterator[Peer]:
    peer = Peer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, headers, raw = await read_request(reader)
        method, target, _ = line.split(" ")
        where = urlsplit(target)
        request = Request(method, where.path, parse_qs(where.query), headers, orjson.loads(raw) if raw else None)
        peer.requests.append(request)
        reply = respond(request, len(peer.requests) - 1)
        if reply.status != 200:
            extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
            writer.write(f"HTTP/1.1 {reply.status} No\r\nContent-Length: 0\r\n{extra}\r\n".encode())
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = reply.events if reply.drop_after is None else reply.events[: reply.drop_after]
        await send_in_pieces(writer, sse_body(sent, reply.line_end), PIECE, chunked=True)
        if reply.drop_after is not None:
            writer.transport.abort()  # a reset: no end of the chunked body
            return
        if reply.stall:
            await reader.read()  # the client's end of the connection
            return
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with loopback(handle) as origin:
        peer.url = origin + "/v1/responses"
        yield peer


def after(events: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    """The events a resuming GET asks for: those numbered after ``starting_after`` (all without it)."""
    starting_after = int(request.query["starting_after"][0]) if "starting_after" in request.query else -1
    return [event for event in events if event["sequence_number"] > starting_after]


def options(background: bool = False, **extra: Any) -> dict[str, Any]:
    body = rxstream.responses_request("gpt-test", "What is the answer?", **({"background": True} if background else {}))
    return {"request": body, "token": "sk-test", "clock": rxstream.VirtualClock(), **extra}


async def streamed(peer: Peer, window: int | None = None, **extra: Any) -> rxstream.Response:
    """stream_responses' response; with ``window``, that of from_sse through a responses_pipeline of that window."""
    call: Awaitable[rxstream.Response]
    if window is None:
        call = rxstream.stream_responses(peer.url, **options(**extra))
    else:
        call = rxstream.from_sse(peer.url, api="responses", **options(**extra)).pipe(
            rxstream.responses_pipeline(window=window)
        )
    return await asyncio.wait_for(call, 10)


async def failed(peer: Peer, window: int | None = None, **extra: Any) -> rxstream.StreamError:
    with pytest.raises(rxstream.StreamError) as caught:
        await streamed(peer, window, **extra)
    return caught.value


def in_memory(events: list[dict[str, Any]]) -> rxstream.Response:
    from tests.test_parse_responses import pipe

    return pipe([orjson.dumps(event) for event in events])


def same(response: rxstream.Response, expected: rxstream.Response) -> None:
    assert response.complete
    assert (response.id, response.text, response.reasoning, response.tool_calls, response.finish_reason) == (
        expected.id,
        expected.text,
        expected.reasoning,
        expected.tool_calls,
        expected.finish_reason,
    )
    assert response.stats.usage == expected.stats.usage


EVENTS = response_events(ITEMS, usage=USAGE)


def resent_and_reordered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neighbours swapped, and every third event sent twice."""
    swapped = [events[i ^ 1] if (i ^ 1) < len(events) else events[i] for i in range(len(events))]
    return [event for i, one in enumerate(swapped) for event in ([one, one] if i % 3 == 0 else [one])]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(EVENTS),
        Reply(response_events(ITEMS, usage=USAGE, start=1)),
        Reply(EVENTS, line_end=b"\r"),
        Reply(EVENTS, line_end=b"\r\n"),
        Reply(resent_and_reordered(EVENTS)),
    ],
    ids=["from 0", "from 1", "CR", "CRLF", "resent and reordered"],
)
async def test_a_whole_stream_is_the_in_memory_result_with_one_post(reply: Reply) -> None:
    async with serve(lambda request, number: reply) as peer:
        response = await streamed(peer)
    same(response, in_memory(EVENTS))
    assert [request.method for request in peer.requests] == ["POST"]
    request = peer.requests[0]
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["accept"] == "text/event-stream"
    assert request.body == {"model": "gpt-test", "input": "What is the answer?", "stream": True}


# Azure OpenAI's endpoint carries its version in the query, https://<resource>.openai.azure.com/openai/v1/responses?api-version=preview
# (https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/responses): a resume keeps it and
# puts the id in the path (it went after the query: …?api-version=preview/resp_0123?stream=true, a 404).
async def test_a_resumed_response_keeps_the_query_of_the_endpoint_url() -> None:
    def respond(request: Request, number: int) -> Reply:
        remaining = after(EVENTS, request) if request.method == "GET" else EVENTS
        return Reply(remaining, drop_after=7 if number == 0 else None)

    async with serve(respond) as peer:
        peer.url += "?api-version=preview"
        response = await streamed(peer, background=True)
    same(response, in_memory(EVENTS))
    (get,) = peer.gets
    assert get.path == "/v1/responses/resp_0123"
    assert get.query == {"api-version": ["preview"], "stream": ["true"], "starting_after": ["6"]}
    assert peer.posts[0].query == {"api-version": ["preview"]}


@pytest.mark.parametrize("start", [0, 1])
@pytest.mark.parametrize("drops", [[1], [7], [7, 3], [len(EVENTS) - 1]], ids=str)
async def test_a_dropped_background_response_resumes_after_the_last_event_delivered(
    drops: list[int], start: int
) -> None:
    events = response_events(ITEMS, usage=USAGE, start=start)

    def respond(request: Request, number: int) -> Reply:
        remaining = after(events, request) if request.method == "GET" else events
        return Reply(remaining, drop_after=drops[number] if number < len(drops) else None)

    async with serve(respond) as peer:
        response = await streamed(peer, background=True)
    same(response, in_memory(events))
    assert len(peer.posts) == 1 and peer.posts[0].body["background"] is True
    delivered = 0
    for drop, get in zip(drops, peer.gets, strict=True):
        delivered += drop
        assert get.path == "/v1/responses/resp_0123"
        assert get.query == {"stream": ["true"], "starting_after": [str(start + delivered - 1)]}
        assert get.headers["authorization"] == "Bearer sk-test"
    assert response.stats.duplicates == 0  # each event came once
    assert response.stats.retries == len(drops)


async def test_a_resumed_stream_that_was_reordered_asks_after_what_was_delivered_in_order() -> None:
    # 0..5 in order, then 7 before 6, and the drop: 6 never came, so the last delivered in order is 5
    order = [*EVENTS[:6], EVENTS[7]]

    def respond(request: Request, number: int) -> Reply:
        return Reply(after(EVENTS, request)) if request.method == "GET" else Reply(order, drop_after=len(order))

    async with serve(respond) as peer:
        response = await streamed(peer, background=True)
    same(response, in_memory(EVENTS))
    assert [get.query["starting_after"] for get in peer.gets] == [["5"]]
    assert response.stats.duplicates == 1  # 7, held when the connection dropped, came again


@pytest.mark.parametrize("drop", [0, 1, 7, len(EVENTS) - 1])
async def test_a_dropped_response_that_is_not_background_fails_with_the_partial_and_no_second_post(drop: int) -> None:
    async with serve(lambda request, number: Reply(EVENTS, drop_after=drop)) as peer:
        error = await failed(peer)
    assert [request.method for request in peer.requests] == ["POST"]
    partial = in_memory_partial(EVENTS[:drop])
    assert (partial_of(error).text, partial_of(error).reasoning, partial_of(error).tool_calls) == partial
    assert partial_of(error).id == ("resp_0123" if drop else None)
    cause = error
    assert isinstance(cause, rxstream.ConnectionLostError)
    assert '"background": true' in str(cause) and "new (paid) response" in str(cause)


def in_memory_partial(events: list[dict[str, Any]]) -> tuple[str, str, tuple[rxstream.ToolCall, ...]]:
    """What the events give, without their end: the text, reasoning and tool calls so far."""
    from tests.test_parse_responses import failure

    partial = failure([orjson.dumps(event) for event in events]).partial
    return partial.text, partial.reasoning, partial.tool_calls


WINDOW = 4  # reorder's window in the gap tests: a gap is past it once four events came after it


def leaving_out(number: int, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["sequence_number"] != number]


@pytest.mark.parametrize("gaps", [[5], [13], [5, 13]], ids=str)
async def test_a_gap_beyond_the_window_resumes_a_background_response_after_the_last_event_delivered(
    gaps: list[int],
) -> None:
    # Reply n leaves out event gaps[n] and stalls: the events after the gap fill the window, and
    # reorder asks for the rest again at once, without waiting for the body to end
    def respond(request: Request, number: int) -> Reply:
        events = after(EVENTS, request) if request.method == "GET" else EVENTS
        return Reply(leaving_out(gaps[number], events), stall=True) if number < len(gaps) else Reply(events)

    async with serve(respond) as peer:
        response = await streamed(peer, WINDOW, background=True)
    same(response, in_memory(EVENTS))
    assert len(peer.posts) == 1
    assert [get.query for get in peer.gets] == [{"stream": ["true"], "starting_after": [str(gap - 1)]} for gap in gaps]
    assert {get.path for get in peer.gets} == {"/v1/responses/resp_0123"}
    assert response.stats.duplicates == 0  # each event came once: the held ones were not read twice
    assert response.stats.retries == len(gaps)


@pytest.mark.parametrize("gap", [5, 13])
async def test_a_gap_beyond_the_window_of_a_response_that_is_not_background_fails_with_the_partial(gap: int) -> None:
    async with serve(lambda request, number: Reply(leaving_out(gap, EVENTS))) as peer:
        error = await failed(peer, WINDOW)
    assert [request.method for request in peer.requests] == ["POST"]
    cause = error
    assert isinstance(cause, rxstream.InvalidChunkError)
    assert (cause.expected, cause.received) == (gap, gap + WINDOW)
    assert (partial_of(error).text, partial_of(error).reasoning, partial_of(error).tool_calls) == in_memory_partial(
        EVENTS[:gap]
    )
    assert partial_of(error).id == "resp_0123"


STALL = 0.1  # stream_timeout in the stall tests: each stall is waited for, for real, this long


def stalling(events: list[dict[str, Any]], sent: int) -> Reply:
    return Reply(events[:sent], stall=True)


@pytest.mark.parametrize("sent", [0, 7, len(EVENTS) - 1])
async def test_a_stalled_response_that_is_not_background_times_out_with_the_partial(sent: int) -> None:
    async with serve(lambda request, number: stalling(EVENTS, sent)) as peer:
        error = await failed(peer, stream_timeout=STALL)
    assert [request.method for request in peer.requests] == ["POST"]
    assert isinstance(error, rxstream.StreamTimeoutError) and error.timeout == STALL
    assert (partial_of(error).text, partial_of(error).reasoning, partial_of(error).tool_calls) == in_memory_partial(
        EVENTS[:sent]
    )


@pytest.mark.parametrize("stalls", [[7], [7, 3], [len(EVENTS) - 1]], ids=str)
async def test_a_stalled_background_response_resumes_after_the_last_event_delivered(stalls: list[int]) -> None:
    # Reply n sends stalls[n] events and goes silent: the idle timeout ends that try, as a drop would
    def respond(request: Request, number: int) -> Reply:
        events = after(EVENTS, request) if request.method == "GET" else EVENTS
        return stalling(events, stalls[number]) if number < len(stalls) else Reply(events)

    clock = rxstream.VirtualClock()
    async with serve(respond) as peer:
        response = await streamed(peer, background=True, stream_timeout=STALL, clock=clock)
    same(response, in_memory(EVENTS))
    assert len(peer.posts) == 1
    delivered = [sum(stalls[: n + 1]) for n in range(len(stalls))]
    assert [get.query["starting_after"] for get in peer.gets] == [[str(count - 1)] for count in delivered]
    assert response.stats.retries == len(stalls) and response.stats.duplicates == 0
    assert clock.sleeps == [1.0] * len(stalls)  # each try made progress: the policy's first delay every time


async def test_a_background_response_that_stays_silent_times_out_once_the_retries_are_spent() -> None:
    async with serve(lambda request, number: stalling(after(EVENTS, request), 0 if number else 7)) as peer:
        error = await failed(peer, background=True, stream_timeout=STALL, retry=rxstream.RetryPolicy(max_retries=2))
    assert [request.method for request in peer.requests] == ["POST", "GET", "GET"]
    assert [get.query["starting_after"] for get in peer.gets] == [["6"], ["6"]]
    assert isinstance(error, rxstream.StreamTimeoutError) and error.kind != "deadline"
    assert (partial_of(error).text, partial_of(error).reasoning, partial_of(error).tool_calls) == in_memory_partial(
        EVENTS[:7]
    )
    assert partial_of(error).stats.retries == 2


async def test_a_background_response_that_stalls_before_its_id_came_is_not_asked_for_again() -> None:
    async with serve(lambda request, number: stalling(EVENTS, 0)) as peer:
        error = await failed(peer, background=True, stream_timeout=STALL)
    assert [request.method for request in peer.requests] == ["POST"]
    assert isinstance(error, rxstream.StreamTimeoutError) and partial_of(error).id is None


async def test_the_deadline_ends_a_background_response_that_keeps_stalling() -> None:
    # Every try sends nothing new and stalls; retries are plenty, so only the deadline ends it
    async with serve(lambda request, number: stalling(after(EVENTS, request), 0 if number else 7)) as peer:
        error = await failed(
            peer, background=True, stream_timeout=STALL, deadline=0.35, retry=rxstream.RetryPolicy(max_retries=100)
        )
    assert isinstance(error, rxstream.StreamTimeoutError) and error.kind == "deadline"
    assert len(peer.posts) == 1 and peer.gets  # the stalls were resumed until the deadline came
    assert partial_of(error).text == in_memory_partial(EVENTS[:7])[0]


async def test_a_body_that_omits_the_final_event() -> None:
    cut = EVENTS[:-1]
    async with serve(lambda request, number: Reply(cut)) as peer:
        error = await failed(peer)
    assert len(peer.requests) == 1
    assert partial_of(error).text == "The answer is forty-two." and not partial_of(error).complete
    assert isinstance(error, rxstream.ConnectionLostError)

    def respond(request: Request, number: int) -> Reply:
        return Reply(after(EVENTS, request)) if request.method == "GET" else Reply(cut)

    async with serve(respond) as peer:
        response = await streamed(peer, background=True)
    same(response, in_memory(EVENTS))
    assert [get.query["starting_after"] for get in peer.gets] == [[str(len(EVENTS) - 2)]]


async def test_429_with_retry_after_posts_again_only_because_no_response_was_made() -> None:
    def respond(request: Request, number: int) -> Reply:
        return Reply(status=429, headers={"Retry-After": "3"}) if number == 0 else Reply(EVENTS)

    clock = rxstream.VirtualClock()
    async with serve(respond) as peer:
        response = await streamed(peer, clock=clock)
    same(response, in_memory(EVENTS))
    assert len(peer.posts) == 2 and clock.sleeps == [3.0]


async def test_429_on_the_resuming_get_gets_again() -> None:
    def respond(request: Request, number: int) -> Reply:
        if request.method == "POST":
            return Reply(EVENTS, drop_after=6)
        return Reply(status=429, headers={"Retry-After": "2"}) if number == 1 else Reply(after(EVENTS, request))

    clock = rxstream.VirtualClock()
    async with serve(respond) as peer:
        response = await streamed(peer, background=True, clock=clock)
    same(response, in_memory(EVENTS))
    assert [request.method for request in peer.requests] == ["POST", "GET", "GET"]
    assert [get.query["starting_after"] for get in peer.gets] == [["5"], ["5"]]
    assert clock.sleeps == [1.0, 2.0]  # the policy's first delay, then the server's Retry-After


async def test_rate_limited_to_the_end_is_a_typed_error() -> None:
    async with serve(lambda request, number: Reply(status=429, headers={"Retry-After": "1"})) as peer:
        error = await failed(peer, retry=rxstream.RetryPolicy(max_retries=2))
    assert isinstance(error, rxstream.RateLimitedError)
    assert len(peer.posts) == 3 and partial_of(error).text == ""


async def test_a_failure_the_server_streams_is_typed_and_not_retried() -> None:
    events = response_events((Message(("Half ", "of it")),), status="failed")
    async with serve(lambda request, number: Reply(events)) as peer:
        error = await failed(peer, background=True)
    assert len(peer.requests) == 1
    assert isinstance(error, rxstream.ResponseFailedError) and error.code == "server_error"
    assert partial_of(error).text == "Half of it"
