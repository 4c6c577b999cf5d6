"""The HTTP client the sources share (issue 20): one per event loop, reused from call to call,
closed when its loop shuts down, never used by another loop; and ``client=`` taken by every
call that makes HTTP requests, with the same outcome as the default."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest

import rxstream
from rxstream.server import Faults, ReferenceResponsesServer, ReferenceSSEServer, generate
from rxstream.transport import _client
from rxstream.transport._push_connection import PushConnection
from rxstream.transport._sse import _Session
from rxstream.transport._websocket import _ResponsesSession

from .responses_events import Message, response_events, sse_body
from .support import read_request

pytestmark = pytest.mark.network

TOKEN = "client-token"
TEXT = generate(600, seed=3)
BODY = (
    b'data: {"choices": [{"index": 0, "delta": {"content": "one "}, "finish_reason": null}]}\n\n'
    b'data: {"choices": [{"index": 0, "delta": {"content": "two"}, "finish_reason": "stop"}]}\n\n'
    b"data: [DONE]\n\n"
)
RESPONSES_BODY = sse_body(response_events([Message(["one ", "two"])]))
# Steps of 10 ms to wait for what ends after the calls (drains, the peer's closes): a few on a quiet
# machine, more under load (a full run beside another failed once in 2 s); a leak never ends.
SETTLE_STEPS = 1000


@dataclass
class Peer:
    """A keep-alive SSE endpoint in its own thread and loop: what each connection carried, and how many are open."""

    url: str = ""
    connections: list[list[str]] = field(default_factory=list)  # per connection, each request's X-Caller
    open: int = 0

    def wait_closed(self) -> None:
        for _ in range(SETTLE_STEPS):
            if self.open == 0:
                return
            threading.Event().wait(0.01)
        raise AssertionError(f"{self.open} connections still open")


@contextmanager
def in_its_own_thread(server: AbstractAsyncContextManager[Any]) -> Iterator[None]:
    """``server`` entered in a thread and loop of its own (its tasks are not the client's), left as the block ends."""
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()

    async def serve() -> None:
        async with server:
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)


@contextmanager
def keep_alive_peer() -> Iterator[Peer]:
    """Answers every request of a connection with BODY (RESPONSES_BODY on /v1/responses, a Content-Length body),
    until the client closes it."""
    peer = Peer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        callers: list[str] = []
        peer.connections.append(callers)
        peer.open += 1
        try:
            while True:
                line, headers, _ = await read_request(reader)
                callers.append(headers.get("x-caller", ""))
                body = RESPONSES_BODY if "/v1/responses" in line else BODY
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            peer.open -= 1
            writer.close()

    @asynccontextmanager
    async def listening() -> AsyncIterator[None]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        peer.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        async with server:
            yield

    with in_its_own_thread(listening()):
        yield peer


async def calls(url: str, caller: str) -> httpx.AsyncClient:
    """Three calls one after the other, then two at once, on the default client; that client."""
    client = await _client.default_client()
    for _ in range(3):
        response = await rxstream.stream_sse(url, request={}, headers={"X-Caller": caller})
        assert response.text == "one two" and response.complete
    responses = await asyncio.gather(
        *(rxstream.stream_sse(url, request={}, headers={"X-Caller": caller}) for _ in range(2))
    )
    assert [response.text for response in responses] == ["one two"] * 2
    assert await _client.default_client() is client
    return client


def test_each_event_loop_has_its_own_connections_reused_and_closed_as_it_shuts_down() -> None:
    with keep_alive_peer() as peer:
        clients: dict[str, httpx.AsyncClient] = {}

        def in_thread(caller: str) -> None:
            clients[caller] = asyncio.run(calls(peer.url, caller))

        threads = [threading.Thread(target=in_thread, args=(f"thread-{n}",)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        for caller in ("run-1", "run-2"):  # asyncio.run twice in one thread: two loops, one after the other
            clients[caller] = asyncio.run(calls(peer.url, caller))
        peer.wait_closed()  # each loop's shutdown closed its client's connections

    assert sorted(clients) == ["run-1", "run-2", "thread-1", "thread-2"]
    assert len({id(client) for client in clients.values()}) == 4 and all(c.is_closed for c in clients.values())
    assert all(len(set(callers)) == 1 for callers in peer.connections)  # no connection served two loops
    # five calls a loop on two connections: the three in a row on one, the two at once on it and one more
    assert sorted(len(callers) for callers in peer.connections) == [1, 1, 1, 1, 4, 4, 4, 4]
    assert not _client._clients


def open_sockets() -> int:
    gc.collect()  # sockets of earlier tests' loops that nothing holds any more
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass  # the listing's own descriptor, closed by now
    return count


def alive(kind: type) -> int:
    gc.collect()
    return sum(isinstance(thing, kind) for thing in gc.get_objects())


async def a_thousand(call: Callable[[], Awaitable[rxstream.Response]]) -> None:
    """1,000 calls, 20 rounds of 50 at once, each giving "one two"; then no task of theirs still running."""
    for _ in range(20):
        responses = await asyncio.gather(*(call() for _ in range(50)))
        assert all(response.text == "one two" and response.complete for response in responses)
    for _ in range(SETTLE_STEPS):  # the tasks that read their body's end after the response was handed on
        if asyncio.all_tasks() == {asyncio.current_task()}:
            break
        await asyncio.sleep(0.01)
    assert asyncio.all_tasks() == {asyncio.current_task()}


Counted = tuple[int, ...]


def counted() -> Counted:
    """How many HTTP clients, SSE and WebSocket sessions, and WebSocket connections are alive."""
    return tuple(alive(kind) for kind in (httpx.AsyncClient, _Session, _ResponsesSession, PushConnection))


def plus_clients(at_start: Counted, clients: int) -> Counted:
    return (at_start[0] + clients, *at_start[1:])


ON_LINUX = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open sockets in /proc/self/fd (Linux)")


@ON_LINUX
def test_a_thousand_calls_leave_no_client_connection_or_task_behind() -> None:
    async def thousand(url: str) -> None:
        await a_thousand(lambda: rxstream.stream_sse(url, request={}))
        assert counted() == plus_clients(at_start, 1)  # the loop's client, and nothing of any call
        assert open_sockets() <= before + 2 * 50  # the pool's and the peer's ends, at most one each per call at once

    # an earlier test's exception kept with its traceback (pytest keeps them) holds that call's client and session
    at_start = counted()
    with keep_alive_peer() as peer:
        before = open_sockets()
        asyncio.run(thousand(peer.url))
        peer.wait_closed()
        assert open_sockets() == before
        assert len(peer.connections) <= 50 * 2
    assert counted() == at_start and not _client._clients


KEPT = 10  # the given client's idle connections


@ON_LINUX
@pytest.mark.parametrize("call", ["stream_sse", "stream_responses"])
def test_a_thousand_calls_with_a_client_given_leave_it_open_and_nothing_else_behind(call: str) -> None:
    async def thousand(url: str) -> None:
        running = open_sockets()  # the loop's own included (its self-pipe)
        async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=KEPT)) as given:
            stream = getattr(rxstream, call)
            await a_thousand(lambda: stream(url, request={}, client=given))
            assert counted() == plus_clients(at_start, 1)  # the given client: no default one, nothing of any call
            assert asyncio.get_running_loop() not in _client._clients
            # the peer's ends of the connections the pool did not keep, closing in its thread
            for _ in range(SETTLE_STEPS):
                if peer.open <= KEPT:
                    break
                await asyncio.sleep(0.01)
            assert open_sockets() <= running + 2 * KEPT  # the given pool's idle connections, both ends
            assert not given.is_closed and (await stream(url, request={}, client=given)).text == "one two"
        assert given.is_closed

    at_start = counted()
    with keep_alive_peer() as peer:
        before = open_sockets()
        url = peer.url.replace("/v1/chat/completions", "/v1/responses") if call == "stream_responses" else peer.url
        asyncio.run(thousand(url))
        peer.wait_closed()  # the given client, closed by its owner, closed its connections
        assert open_sockets() == before
        assert len(peer.connections) <= 50 + 19 * (50 - KEPT)  # connections went back to the pool and were reused
    assert counted() == at_start and not _client._clients


@ON_LINUX
@pytest.mark.parametrize("given", [False, True], ids=["default", "client given"])
def test_a_thousand_calls_in_websocket_mode_leave_no_connection_or_task_behind(given: bool) -> None:
    async def thousand(url: str) -> None:
        running = open_sockets()  # the loop's own included (its self-pipe)
        async with httpx.AsyncClient() as client:
            await a_thousand(lambda: rxstream.stream_responses(url, request={}, client=client if given else None))
            assert counted() == plus_clients(at_start, 1)  # only the client here: no call made one of its own
            assert asyncio.get_running_loop() not in _client._clients
            assert open_sockets() == running  # every WebSocket closed, both ends: none is kept for another call

    at_start = counted()
    server = ReferenceResponsesServer(["one ", "two"], qps=1e6)
    with in_its_own_thread(server):
        before = open_sockets()
        asyncio.run(thousand(server.websocket_url))
        assert server.stats.connections == 1000 and not server._connections
        assert open_sockets() == before
    assert counted() == at_start and not _client._clients


# Each recovery case of both streams: (server, faults, background, the call's options).
CASES = [
    ("chat", "", False, {}),
    ("chat", "abort_after=30", False, {}),  # resumed with Last-Event-ID
    ("chat", "reject_first=2", False, {}),  # 429s, Retry-After
    ("chat", "abort_after=20", False, {"ids": False}),  # no id: fails with the partial
    ("chat", "abort_after=20", False, {"ids": False, "replay": "deterministic"}),
    ("chat", "malformed_at=15", False, {}),
    ("chat", "stall_after=5", False, {"stream_timeout": 0.2}),
    ("chat", "abort_after=0,repeat=0", False, {}),  # lost for good
    ("chat", "", False, {"token": "wrong"}),
    ("chat", "oversize_at=5,oversize_bytes=5000", False, {"max_size": 4096}),  # an event too large: fails
    ("responses-sse", "reject_first=2", False, {}),  # 429s on the Responses endpoint too
    ("responses-sse", "abort_after=30", True, {}),  # a background response resumed by GET
    ("responses-sse", "abort_after=30", False, {}),  # not resumable: fails with the partial
    ("responses-sse", "stall_after=20", True, {"stream_timeout": 0.2}),
    ("responses-websocket", "abort_after=30", True, {}),  # resumed over SSE, through the same client
    ("responses-websocket", "stall_after=20", True, {"stream_timeout": 0.2}),
]


async def outcome(kind: str, faults: str, background: bool, options: dict[str, Any], client: Any) -> tuple[Any, ...]:
    """What a call gave, and what the server saw, in terms that do not vary from run to run."""
    ids = options.pop("ids", True)
    given = {"client": client} if client is not None else {}
    call = {"token": TOKEN, "clock": rxstream.VirtualClock(), **options, **given}
    server: ReferenceSSEServer | ReferenceResponsesServer
    if kind == "chat":
        server = ReferenceSSEServer(TEXT, chunk_size=12, token=TOKEN, faults=Faults.parse(faults), ids=ids)
    else:
        server = ReferenceResponsesServer(TEXT, chunk_size=12, token=TOKEN, faults=Faults.parse(faults))
    async with server:
        try:
            if kind == "chat":
                response = await rxstream.stream_sse(server.url, request=rxstream.chat_request("m", "hi"), **call)
            else:
                body = rxstream.responses_request("m", "hi", **({"background": True} if background else {}))
                assert isinstance(server, ReferenceResponsesServer)
                url = server.url if kind == "responses-sse" else server.websocket_url
                response = await rxstream.stream_responses(url, request=body, **call)
            ended: tuple[Any, ...] = ("response", response.text, response.complete, response.stats.retries)
        except rxstream.StreamError as error:
            assert error.partial is not None  # every error that ends a stream carries what came before it
            ended = ("error", type(error).__name__, error.partial.text, error.partial.stats.retries)
        return (*ended, server.stats.connections)


@pytest.mark.parametrize(("kind", "faults", "background", "options"), CASES)
async def test_a_call_with_client_given_ends_as_one_on_the_default_client(
    kind: str, faults: str, background: bool, options: dict[str, Any]
) -> None:
    requests: list[str] = []

    async def note(request: httpx.Request) -> None:
        requests.append(request.method)

    default = await outcome(kind, faults, background, dict(options), None)
    async with httpx.AsyncClient(event_hooks={"request": [note]}) as given:
        with_client = await outcome(kind, faults, background, dict(options), given)
    assert with_client == default
    assert requests  # the given client made the requests: in WebSocket mode, the resuming GET
    if kind == "responses-websocket":
        assert set(requests) == {"GET"}


async def by_call(call: str, url: str, body: dict[str, Any], client: httpx.AsyncClient) -> str:
    """The text one of the calls that make HTTP requests gives, reading ``url`` with ``client`` given."""
    options: dict[str, Any] = {"request": body, "token": TOKEN, "client": client, "clock": rxstream.VirtualClock()}
    api: Literal["chat", "responses"] = "chat" if "chat" in call else "responses"
    if call.startswith("stream_sse"):
        return (await rxstream.stream_sse(url, **options)).text
    if call.startswith("stream_responses"):
        return (await rxstream.stream_responses(url, **options)).text
    if call.startswith("stream_text"):
        async with rxstream.stream_text(url, api=api, **options) as pieces:
            return "".join([piece async for piece in pieces])
    if call.startswith("stream_deltas"):
        async with rxstream.stream_deltas(url, api=api, **options) as deltas:
            return "".join([delta.text async for delta in deltas])
    source = rxstream.from_sse(url, **options)
    return (await source.pipe(rxstream.sse_pipeline())).text


# (the call, and whether it reads a Responses server over WebSocket, cut after 30 events so that it resumes by SSE)
EVERY_CALL = [
    ("stream_sse, chat", False),
    ("stream_responses", False),
    ("stream_responses", True),
    ("stream_text, chat", False),
    ("stream_text, responses", True),
    ("stream_deltas, chat", False),
    ("stream_deltas, responses", True),
    ("from_sse, chat", False),
]


@pytest.mark.parametrize(("call", "websocket"), EVERY_CALL)
async def test_every_call_that_makes_http_requests_makes_them_all_with_the_client_given(
    call: str, websocket: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``client=``, every HTTP request of the call goes through that client (counted by its hook
    against the requests the server answered): none through the loop's default client, none through
    a client of its own. In WebSocket mode the requests are the resuming GETs."""
    made: list[str] = []

    async def note(request: httpx.Request) -> None:
        made.append(request.method)

    async def no_default() -> httpx.AsyncClient:
        raise AssertionError("the default client was asked for, though a client was given")

    built = 0
    real_init = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        nonlocal built
        built += 1
        real_init(self, *args, **kwargs)

    server: ReferenceSSEServer | ReferenceResponsesServer
    if "chat" in call:
        server = ReferenceSSEServer(TEXT, chunk_size=12, token=TOKEN, faults=Faults.parse("abort_after=30"))
        body = rxstream.chat_request("m", "hi")
    else:  # resumable only in the background; over HTTP, cut too, it is resumed by GET as well
        server = ReferenceResponsesServer(TEXT, chunk_size=12, token=TOKEN, faults=Faults.parse("abort_after=30"))
        body = rxstream.responses_request("m", "hi", background=True)
    async with server, httpx.AsyncClient(event_hooks={"request": [note]}) as given:
        monkeypatch.setattr(_client, "default_client", no_default)
        monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
        url = server.websocket_url if websocket else server.url  # type: ignore[union-attr]
        text = await by_call(call, url, body, given)
    assert text == TEXT
    assert built == 0
    # each connection the server counted was one request of the given client's, but a WebSocket's
    assert len(made) == server.stats.connections - websocket >= 1
    assert made[-1] == ("GET" if websocket or "responses" in call else "POST")
