"""How the SSE source hands down the events of one read (issue 20, row 12): all at once to a stage that
takes batches, one ``on_next`` each otherwise, with the same outcome as one at a time; and a body its
server closes after the answer is not read on to that close."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

import rxstream
from rxstream import operators as rxo
from rxstream.core._demand import Demand, Source, current_demand, current_resume, current_secrets, current_stats
from rxstream.protocol._decision import RetryPolicy
from rxstream.protocol._sse import SSEEvent
from rxstream.testing import Message, encode, response_events
from rxstream.transport import _client, _websocket
from rxstream.transport._recovery import RateLimiter
from rxstream.transport._sse import _Options, _ResponsesSession, _Session

from .support import decode, loopback, read_request, send_in_pieces, valve

URL = "http://127.0.0.1:9/v1/chat/completions"  # never connected: the sessions here are pushed to by hand
MAX_SIZE = 300  # small enough for a drawn event to pass it
Push = Literal["batch", "each"]


def options(max_size: int = MAX_SIZE) -> _Options:
    return _Options(
        token=None,
        headers=None,
        stream_timeout=30.0,
        content_timeout=None,
        deadline=None,
        retry=RetryPolicy(),
        on_retry=None,
        clock=rxstream.VirtualClock(),
        limiter=RateLimiter(50.0, rxstream.VirtualClock()),
        json=None,
        max_size=max_size,
        replay="deterministic",
        client=None,
    )


@dataclass
class Pushed:
    """What pushing the reads gave: the pipeline's outcome, and what the session kept of them."""

    outcome: tuple[Any, ...]
    delivered: int
    last_event_id: str
    restart_requested: bool
    disposed: bool
    demand_ready: bool | None
    skips: list[int]
    raised: str | None


def outcome_of(items: list[Any], errors: list[Exception], completed: bool) -> tuple[Any, ...]:
    """A pipeline's end in terms that do not vary from run to run: no times."""

    def counts(stats: rxstream.Stats) -> tuple[Any, ...]:
        return (stats.chunks, stats.bytes, stats.duplicates, stats.out_of_order, stats.dropped, stats.usage)

    if errors:
        (error,) = errors
        partial = getattr(error, "partial", None)
        return ("error", type(error).__name__, str(error), partial and (partial.text, counts(partial.stats)))
    if not items:  # held back below: nothing has come out
        return ("nothing", completed)
    (response,) = items
    return ("response", completed, response.text, response.complete, response.finish_reason, counts(response.stats))


def push_reads(
    session_type: type[_Session],
    pipeline: Callable[[Observable[Any]], Observable[Any]],
    reads: list[list[SSEEvent]],
    max_size: int = MAX_SIZE,
) -> Callable[[Push, int], Pushed]:
    """A function pushing ``reads`` to a fresh session below ``pipeline``, by ``push`` or ``push_each``, as
    ``_Session.read`` does (a replay's ``skip`` first; no more once the demand is paused, where it
    would wait), then ending it as a body's end would."""

    def run(how: Push, skip: int) -> Pushed:
        sessions: list[_Session] = []
        demands: list[Demand | None] = []

        def subscribe(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> Disposable:
            session = session_type(
                observer, URL, options(max_size), current_demand(), current_stats(), current_resume(), current_secrets()
            )
            sessions.append(session)
            demands.append(session.demand)
            return Disposable(session.dispose)

        items: list[Any] = []
        errors: list[Exception] = []
        completed: list[bool] = []
        Source(subscribe).pipe(pipeline).subscribe(items.append, errors.append, lambda: completed.append(True))
        (session,) = sessions
        skips: list[int] = []
        raised = None
        try:
            for events in reads:
                skip = (session.push if how == "batch" else session.push_each)(events, skip)
                skips.append(skip)
                if session.disposed or session.restart_requested:
                    break
                if session.demand is not None and not session.demand.ready:
                    break  # where read() would wait for the consumer
        except rxstream.FrameTooLargeError as error:
            raised = str(error)
            disposed = session.disposed
            session.end(error)  # as run() ends the stream with it
        else:
            disposed = session.disposed
            session.end(None)
        demand = demands[0]
        return Pushed(
            outcome_of(items, errors, bool(completed)),
            session.delivered,
            session.last_event_id,
            session.restart_requested,
            disposed,
            None if demand is None else demand.ready,
            skips,
            raised,
        )

    return run


def chat(content: str | None = None, finish_reason: str | None = None, usage: bool = False) -> str:
    choice = {"index": 0, "delta": {} if content is None else {"content": content}, "finish_reason": finish_reason}
    return orjson.dumps({"id": "c", "choices": [choice], **({"usage": {"total_tokens": 3}} if usage else {})}).decode()


CHAT_EVENTS = st.one_of(
    st.builds(chat, st.text(max_size=12)),  # a text delta: the fast path's
    st.builds(chat, st.text(max_size=400)),  # above MAX_SIZE at times: the source fails at it
    st.builds(chat, st.none(), st.sampled_from(["stop", "length"])),
    st.builds(chat, st.none(), st.none(), st.just(True)),
    st.just("[DONE]"),
    st.just("{not json"),
    st.just('{"error": {"message": "overloaded", "type": "server_error"}}'),
)


def cut(events: list[SSEEvent], cuts: list[int]) -> list[list[SSEEvent]]:
    bounds = [0, *sorted(c % (len(events) + 1) for c in cuts), len(events)]
    return [events[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


@st.composite
def chat_reads(draw: st.DrawFn) -> list[list[SSEEvent]]:
    """Chat events as reads bring them: text deltas mostly, keep-alive pings, the ends and failures
    a body can hold, ids or none, cut anywhere."""
    datas = draw(st.lists(st.one_of(CHAT_EVENTS, st.builds(chat, st.text(max_size=12))), max_size=30))
    events = [
        SSEEvent(data, "ping" if ping else "message", event_id)
        for data, ping, event_id in zip(
            datas,
            draw(st.lists(st.booleans(), min_size=len(datas), max_size=len(datas))),
            draw(st.lists(st.one_of(st.none(), st.text(max_size=3)), min_size=len(datas), max_size=len(datas))),
            strict=True,
        )
    ]
    return cut(events, draw(st.lists(st.integers(0, 40), max_size=6)))


def piped_sse() -> Callable[[Observable[Any]], Observable[Any]]:
    """sse_pipeline's five operators piped one by one: no stage takes batches, each event is one on_next."""

    def apply(source: Observable[Any]) -> Observable[Any]:
        return source.pipe(rxo.parse_sse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize())

    return apply


def held_back(source: Observable[Any]) -> Observable[Any]:
    """The operators piped one by one, below a consumer that takes nothing: the buffer fills, and the
    demand the source sees is paused."""
    return source.pipe(
        rxo.parse_sse(),
        rxo.reorder(),
        rxo.backpressure_buffer(2),
        valve(rxstream.Demand(ready=False)),
        rxo.accumulate(),
        rxo.finalize(),
    )


@given(reads=chat_reads(), skip=st.integers(0, 3))
@settings(max_examples=300)
def test_a_read_pushed_at_once_gives_what_its_events_pushed_one_by_one_give(
    reads: list[list[SSEEvent]], skip: int
) -> None:
    fused = push_reads(_Session, rxstream.sse_pipeline(), reads)
    piped = push_reads(_Session, piped_sse(), reads)
    expected = piped("each", skip)
    assert fused("batch", skip) == expected
    assert piped("batch", skip) == expected
    assert fused("each", skip) == expected
    held = push_reads(_Session, held_back, reads)
    assert held("batch", skip) == held("each", skip)


def responses_data(numbers: list[int]) -> list[str]:
    """A Responses stream's events, of the sequence numbers ``numbers`` (in that order): gaps when some are missing."""
    whole = [orjson.loads(data) for data in encode(response_events((Message(("Hel", "lo, ", "wor", "ld", "!")),)))]
    return [orjson.dumps(whole[number]).decode() for number in numbers if number < len(whole)]


@given(
    numbers=st.lists(st.integers(0, 20), max_size=30),
    cuts=st.lists(st.integers(0, 40), max_size=6),
    window=st.integers(1, 4),
)
@settings(max_examples=200)
def test_a_gap_asking_for_a_restart_mid_read_stops_the_push_where_one_by_one_would(
    numbers: list[int], cuts: list[int], window: int
) -> None:
    """responses_pipeline's reorder asks its source for the stream again on a gap wider than its window:
    the events of the read after the one that asked are not pushed, and the last id is that event's."""
    events = [SSEEvent(data, "message", str(i)) for i, data in enumerate(responses_data(numbers))]
    reads = cut(events, cuts)
    expected = push_reads(_ResponsesSession, rxstream.responses_pipeline(window), reads)("each", 0)
    assert push_reads(_ResponsesSession, rxstream.responses_pipeline(window), reads)("batch", 0) == expected


def test_the_push_stops_at_a_restart_in_the_middle_of_a_read() -> None:
    """The case the property above must reach: a gap in the middle of one read."""
    events = [SSEEvent(data, "message", str(i)) for i, data in enumerate(responses_data([0, 1, 2, 3, 9, 10, 11, 4]))]
    pushed = push_reads(_ResponsesSession, rxstream.responses_pipeline(2), [events])("batch", 0)
    assert pushed.restart_requested and not pushed.disposed
    # the first event past the window (sequence number 9, while 4 is missing) asked: the three after it wait
    assert (pushed.delivered, pushed.last_event_id, pushed.skips) == (5, "4", [0])


# -- a body that its server ends by closing the connection --------------------------------------------

DONE_BODY = (
    b'data: {"choices": [{"index": 0, "delta": {"content": "Hi."}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
)


@pytest.mark.network
@pytest.mark.parametrize(
    "framing",
    ["Connection: close\r\nTransfer-Encoding: chunked", "", "HTTP/1.0"],
    ids=["connection close", "close-delimited", "HTTP/1.0"],
)
async def test_a_body_its_server_will_close_is_closed_at_the_final_event_not_read_to_its_end(
    framing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server holds the connection open after [DONE] but has said it closes it after this body:
    no other request can use it, so the client closes it at once instead of waiting to read its end.
    (Before, it waited DRAIN_SECONDS for an end that never came: made long here, that is a stall.)"""
    monkeypatch.setattr(_client, "DRAIN_SECONDS", 30.0)
    closed: list[float] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        version = "HTTP/1.0" if framing == "HTTP/1.0" else "HTTP/1.1"
        headers = "" if framing in ("", "HTTP/1.0") else framing + "\r\n"
        body = b"%x\r\n%s\r\n" % (len(DONE_BODY), DONE_BODY) if "chunked" in framing else DONE_BODY
        writer.write(f"{version} 200 OK\r\nContent-Type: text/event-stream\r\n{headers}\r\n".encode() + body)
        await writer.drain()
        await reader.read()  # nothing more sent, the connection held open until the client closes it
        closed.append(time.monotonic())

    async with loopback(handle) as origin:
        response = await rxstream.stream_sse(origin + "/v1/chat/completions", request={})
        ended = time.monotonic()
        for _ in range(250):
            if closed:
                break
            await asyncio.sleep(0.02)
    assert response.text == "Hi." and response.complete
    assert closed and closed[0] - ended < 1.0


def test_a_framed_keep_alive_body_is_still_read_to_its_end() -> None:
    """Only a body its server will close is left unread: a chunked or sized HTTP/1.1 one keeps its connection."""
    request = httpx.Request("POST", URL)

    def response(version: str, headers: dict[str, str]) -> httpx.Response:
        return httpx.Response(200, headers=headers, request=request, extensions={"http_version": version.encode()})

    assert _client.reusable(response("HTTP/1.1", {"Transfer-Encoding": "chunked"}))
    assert _client.reusable(response("HTTP/1.1", {"Content-Length": "10"}))
    assert _client.reusable(response("HTTP/2", {}))
    assert not _client.reusable(response("HTTP/1.1", {}))
    assert not _client.reusable(response("HTTP/1.1", {"Content-Length": "10", "Connection": "close"}))
    assert not _client.reusable(response("HTTP/1.0", {"Content-Length": "10"}))


def chunk_event(content: str) -> bytes:
    return b"data: " + chat(content).encode() + b"\n\n"


def event_lists() -> int:
    """The lists of SSEEvents alive: a read's, held by whatever holds it."""
    gc.collect()
    return sum(type(thing) is list and bool(thing) and type(thing[0]) is SSEEvent for thing in gc.get_objects())


@pytest.mark.network
async def test_no_read_s_events_are_held_while_the_next_read_is_awaited() -> None:
    """Between reads a stream holds none of the events it pushed: with 200 streams at once, each holding
    its last read's 250, the garbage collector walked 50,000 of them at every collection."""
    sent = asyncio.Event()
    go_on = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        writer.write(b"".join(chunk_event(f"{n} ") for n in range(50)))
        await writer.drain()
        sent.set()
        await go_on.wait()
        writer.write(b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n')
        await writer.drain()

    async with loopback(handle) as origin:
        call = asyncio.create_task(rxstream.stream_sse(origin + "/v1/chat/completions", request={}))
        await sent.wait()
        for _ in range(50):  # until the client has read the 50 events and waits for more
            await asyncio.sleep(0.01)
        held = event_lists()
        go_on.set()
        response = await call
    assert response.text == "".join(f"{n} " for n in range(50))
    assert held == 0


# -- against a raw asyncio peer: what stream_sse gives is what the operators piped one by one give ----

PIECES: dict[str, Callable[[int], bytes]] = {
    "text": lambda n: b"data: " + chat(f"w{n} ").encode() + b"\n\n",
    "keep-alive": lambda n: b": keep-alive\n\n",
    "ping": lambda n: b'event: ping\ndata: {"type": "ping"}\n\n',
    "usage": lambda n: b"data: " + chat(usage=True).encode() + b"\n\n",
    "error": lambda n: b'data: {"error": {"message": "overloaded", "type": "server_error", "code": null}}\n\n',
    "finish": lambda n: b"data: " + chat(None, "stop").encode() + b"\n\n",
    "done": lambda n: b"data: [DONE]\n\n",
}


def one_by_one(body: bytes) -> tuple[Any, ...]:
    """The body's events through the five operators piped one by one, in memory."""
    items: list[Any] = []
    errors: list[Exception] = []
    completed: list[bool] = []
    source = rxstream.from_frames(decode(body))
    source.pipe(piped_sse()).subscribe(items.append, errors.append, lambda: completed.append(True))
    return outcome_of(items, errors, bool(completed))


@pytest.mark.network
@given(
    kinds=st.lists(st.sampled_from(list(PIECES)), max_size=40),
    ending=st.sampled_from(["as the body says", "abrupt close"]),
    piece=st.integers(1, 200),
    chunked=st.booleans(),
)
@settings(max_examples=60)
def test_stream_sse_gives_what_the_operators_piped_one_by_one_give_from_a_raw_peer(
    kinds: list[str], ending: str, piece: int, chunked: bool
) -> None:
    """Keep-alive comments, pings, an error event mid-stream, [DONE] or none, and a connection that
    drops after the body (a chunked body cut short): the text, stats and errors of the pushes by batch
    are those of the in-memory operators fed one event at a time; a body that ends too soon is the
    source's ConnectionLostError (no retries here) rather than finalize's error, with the same partial."""
    body = b"".join(PIECES[kind](n) for n, kind in enumerate(kinds))
    expected = one_by_one(body)
    abrupt = ending == "abrupt close"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        framing = "Transfer-Encoding: chunked" if chunked or abrupt else "Connection: close"
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{framing}\r\n\r\n".encode())
        await send_in_pieces(writer, body, piece, chunked=chunked or abrupt)
        if abrupt:
            writer.transport.abort()  # no last chunk: the body is cut short
            return
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def run() -> tuple[Any, ...]:
        async with loopback(handle) as origin:
            try:
                response = await rxstream.stream_sse(
                    origin + "/v1/chat/completions", request={}, retry=RetryPolicy(max_retries=0)
                )
            except rxstream.StreamError as error:
                return outcome_of([], [error], False)
            return outcome_of([response], [], True)

    got = asyncio.run(asyncio.wait_for(run(), 20))
    if expected[1] == "IncompleteStreamError":  # the body ended or broke too soon: the source says so first
        assert got[:2] == ("error", "ConnectionLostError") and got[3] == expected[3]
    else:  # a connection broken after the finish reason, before [DONE], ends the answer as the body's end does
        assert got == expected


# Providers and proxies cut a chunked body short ("peer closed connection without sending complete
# message body (incomplete chunked read)": https://github.com/konveyor/kai/issues/622,
# https://github.com/Alishahryar1/free-claude-code/issues/225). After the finish reason, all that
# is lost is what may follow it (include_usage's chunk, [DONE]): the answer is whole.
@pytest.mark.network
@pytest.mark.parametrize("retries", [0, 3])
async def test_a_body_cut_short_after_the_finish_reason_ends_the_answer_complete(retries: int) -> None:
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        requests += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        body = b"".join(
            b"data: " + event.encode() + b"\n\n" for event in (chat("Hello"), chat(" there"), chat(None, "stop"))
        )
        await send_in_pieces(writer, body, 40, chunked=True)
        writer.transport.abort()  # no last chunk, no [DONE]

    async with loopback(handle) as origin:
        response = await rxstream.stream_sse(
            origin + "/v1/chat/completions", request={}, retry=RetryPolicy(max_retries=retries)
        )
    assert response.complete and response.text == "Hello there" and response.finish_reason == "stop"
    assert response.stats.retries == 0 and requests == 1  # no second request for an answer that came whole


def test_a_websocket_session_resumed_over_sse_pushes_each_event_as_its_message() -> None:
    """In WebSocket mode a Responses stream resumed over SSE hands on each event's JSON as bytes, as a
    message would have brought it (its own emit): the read's events do not go down as SSEEvents."""
    seen: list[Any] = []

    def recording(source: Observable[Any]) -> Observable[Any]:
        return source.pipe(ops.do_action(seen.append), rxstream.responses_pipeline())

    events = [SSEEvent(data, "message", str(i)) for i, data in enumerate(responses_data(list(range(13))))]
    pushed = push_reads(_websocket._ResponsesSession, recording, [events[:5], events[5:]], 2**16)("batch", 0)
    assert pushed.outcome[:4] == ("response", True, "Hello, world!", True)
    assert seen == [event.data.encode() for event in events]
