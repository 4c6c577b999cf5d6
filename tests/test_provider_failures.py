"""Real APIs as they fail in production (issue 25): raw asyncio peers on 127.0.0.1 replaying what the
providers document, and the typed error each must give, with the server's words, the partial
response kept, one request where another would be a new paid completion, and in bounded time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as serve_websocket

import rxstream
from rxstream.transport._client import DRAIN_SECONDS
from rxstream.transport._sse import FINISH_GRACE

from .support import read_request

pytestmark = pytest.mark.network

TOKEN = "sk-provider-test-0123456789"
BOUND = 8.0  # seconds any of these streams may take, at most
HELD = 4.0  # stream_timeout against a peer that holds the connection open: what ends the stream must come well before
Answer = Callable[[int, asyncio.StreamWriter], Awaitable[None]]  # (POST number from 0, the writer)


@dataclass
class Peer:
    url: str = ""
    posts: int = 0
    released: list[float] = field(default_factory=list)  # when the client let go of a connection held open


@asynccontextmanager
async def serve(answer: Answer, *, path: str = "/v1/chat/completions") -> AsyncIterator[Peer]:
    """An HTTP/1.1 endpoint in raw asyncio: ``answer`` writes the response to each POST; the peer
    then holds the connection open (as the gateways in issue 25 do) for the next request, until the
    client lets go."""
    peer = Peer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # requests on this connection (httpx keeps one whose body it read whole)
                await read_request(reader)
                number, peer.posts = peer.posts, peer.posts + 1
                await answer(number, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):  # the client closed: the connection was released
            peer.released.append(time.monotonic())
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        peer.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}{path}"
        yield peer
    finally:
        server.close()
        await server.wait_closed()


def head(status: str, content_type: str, body: bytes = b"", *, streamed: bool = False) -> bytes:
    """A response's head (and ``body``): a Content-Length, or none for a stream that goes on."""
    length = "" if streamed else f"Content-Length: {len(body)}\r\n"
    return f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{length}\r\n".encode() + body


def refusal(status: str, body: bytes, content_type: str = "application/json") -> Answer:
    async def answer(number: int, writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, content_type, body))

    return answer


def chunk(content: str | None = None, finish_reason: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return b"data: " + orjson.dumps({"id": "chatcmpl-1", "choices": [choice]}) + b"\n\n"


CHAT = chunk("The ") + chunk("answer.") + chunk(finish_reason="stop")


async def outcome(awaitable: Awaitable[rxstream.Response]) -> tuple[rxstream.Response | rxstream.StreamError, float]:
    started = time.monotonic()
    try:
        result: rxstream.Response | rxstream.StreamError = await asyncio.wait_for(awaitable, BOUND)
    except rxstream.StreamError as error:
        result = error
    return result, time.monotonic() - started


def chat(peer: Peer, **extra: Any) -> Awaitable[rxstream.Response]:
    """The chat stream at ``peer``, its retries' waits on a virtual clock."""
    return call("chat", peer, clock=rxstream.VirtualClock(), **extra)


def assert_empty_partial(error: rxstream.StreamError) -> None:
    assert error.partial is not None and error.partial.text == "" and not error.partial.complete
    assert "kept on this error's .partial" in "\n".join(getattr(error, "__notes__", []))


# -- the server's words reach the user: HTTP errors ----------------------------------------
# OpenAI's error codes (https://platform.openai.com/docs/guides/error-codes): 401 "Incorrect API key
# provided", 400 context_length_exceeded, each as {"error": {"message", "type", "param", "code"}}.

OPENAI_401 = orjson.dumps(
    {
        "error": {
            "message": f"Incorrect API key provided: {TOKEN}. You can find your API key at https://platform.openai.com.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
)
OPENAI_400 = orjson.dumps(
    {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
)


async def test_a_401_is_an_authentication_error_with_the_servers_message_and_an_empty_partial() -> None:
    async with serve(refusal("401 Unauthorized", OPENAI_401)) as peer:
        try:
            await asyncio.wait_for(chat(peer), BOUND)
        except rxstream.AuthenticationError as error:
            caught = error
    assert (caught.status_code, caught.error_type, caught.error_code) == (
        401,
        "invalid_request_error",
        "invalid_api_key",
    )
    assert caught.server_message is not None and caught.server_message.startswith(
        "Incorrect API key provided: [redacted]."
    )
    assert TOKEN not in str(caught) + caught.body and "[redacted]" in caught.body
    assert_empty_partial(caught)
    assert peer.posts == 1


async def test_a_400_says_the_servers_code_and_message_and_is_not_retried() -> None:
    async with serve(refusal("400 Bad Request", OPENAI_400)) as peer:
        error, _ = await outcome(chat(peer))
    assert isinstance(error, rxstream.APIStatusError) and error.status_code == 400
    assert "HTTP 400 context_length_exceeded: This model's maximum context length is 8192 tokens." in str(error)
    assert error.body == OPENAI_400.decode() and error.attempts == 1 and peer.posts == 1
    assert_empty_partial(error)


async def test_a_plain_text_error_body_is_the_message() -> None:
    async with serve(refusal("404 Not Found", b"no such route\n", "text/plain")) as peer:
        error, _ = await outcome(chat(peer))
    assert isinstance(error, rxstream.APIStatusError) and error.server_message == "no such route"
    assert "HTTP 404: no such route" in str(error)


# Anthropic's errors (https://docs.anthropic.com/en/api/errors): 529 overloaded_error, "the API is
# temporarily overloaded", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}};
# the SDK retries it as a 5xx.
ANTHROPIC_529 = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'


def overloaded_then(ok_from: int) -> Answer:
    async def answer(number: int, writer: asyncio.StreamWriter) -> None:
        if number < ok_from:
            writer.write(head("529 Site Overloaded", "application/json", ANTHROPIC_529))
        else:
            writer.write(head("200 OK", "text/event-stream", CHAT + b"data: [DONE]\n\n"))

    return answer


async def test_a_529_overloaded_is_retried_like_a_503() -> None:
    retries: list[rxstream.Retry] = []
    async with serve(overloaded_then(1)) as peer:
        response, _ = await outcome(chat(peer, on_retry=retries.append))
    assert isinstance(response, rxstream.Response) and response.text == "The answer." and response.complete
    assert peer.posts == 2 and [retry.reason for retry in retries] == ["HTTP 529 overloaded_error: Overloaded"]


async def test_a_529_to_the_end_carries_the_last_bodys_message() -> None:
    async with serve(overloaded_then(99)) as peer:
        error, _ = await outcome(chat(peer))
    assert isinstance(error, rxstream.APIStatusError) and not isinstance(error, rxstream.RateLimitedError)
    assert (error.status_code, error.error_type, error.server_message) == (529, "overloaded_error", "Overloaded")
    assert error.attempts == 4 == peer.posts and "HTTP 529 overloaded_error: Overloaded (on each of 4 tries)" in str(
        error
    )
    assert_empty_partial(error)


# -- a 200 that is not an event stream: failed at once, never retried --------------------------
# OpenRouter (https://openrouter.ai/docs/api-reference/errors): errors come as a JSON body
# {"error": {"code", "message", "metadata"}}; a proxy or captive portal answers an HTML page.


async def test_a_200_json_error_body_is_an_unexpected_content_type_with_the_message() -> None:
    body = b'{"error": {"code": 502, "message": "Provider returned error", "metadata": {"provider_name": "X"}}}'
    async with serve(refusal("200 OK", body)) as peer:
        error, took = await outcome(chat(peer))
    assert isinstance(error, rxstream.UnexpectedContentTypeError)
    assert (error.content_type, error.server_message, error.body) == (
        "application/json",
        "Provider returned error",
        body.decode(),
    )
    assert "Provider returned error" in str(error) and "not retried" in str(error)
    assert peer.posts == 1  # no "connection lost after 4 attempts"
    assert_empty_partial(error)


async def test_a_200_html_page_from_a_proxy_is_an_unexpected_content_type() -> None:
    page = b"<!DOCTYPE html><html><head><title>Sign in to the network</title></head><body>" + b"x" * 100_000
    async with serve(refusal("200 OK", page, "text/html; charset=utf-8")) as peer:
        error, _ = await outcome(chat(peer))
    assert isinstance(error, rxstream.UnexpectedContentTypeError) and error.content_type == "text/html; charset=utf-8"
    assert error.body.startswith("<!DOCTYPE html>") and len(error.body) == 64 * 1024  # a bounded prefix
    assert error.server_message is None and len(str(error)) < 1000 and peer.posts == 1


# -- input errors: at once, with a hint, no connection -------------------------------------------


async def test_an_http_url_given_to_the_websocket_source_fails_at_once_with_a_hint() -> None:
    started = time.monotonic()
    with pytest.raises(rxstream.InvalidEndpointError) as caught:
        await rxstream.stream("http://127.0.0.1:9/v1/chat/completions", token=TOKEN)
    assert "--sse" in str(caught.value) and "--responses" in str(caught.value)
    assert isinstance(caught.value, ValueError) and time.monotonic() - started < 0.5


@pytest.mark.parametrize("url", ["127.0.0.1:9/v1/chat/completions", "localhost/v1"])
async def test_a_url_without_a_scheme_fails_at_once(url: str) -> None:
    with pytest.raises(rxstream.InvalidEndpointError, match="has no scheme"):
        await rxstream.stream_sse(url, token=TOKEN)


# -- a queued request is not a stalled one -------------------------------------------------------
# DeepSeek's rate-limit page (https://api-docs.deepseek.com/quick_start/rate_limit): under load the
# request stays connected and streams ": keep-alive" SSE comments until inference starts; OpenRouter
# sends ": OPENROUTER PROCESSING" "to prevent connection timeouts"
# (https://openrouter.ai/docs/api-reference/streaming).


def keep_alives(seconds: float, then: bytes) -> Answer:
    async def answer(number: int, writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", "text/event-stream", streamed=True))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            writer.write(b": keep-alive\n\n")
            await writer.drain()
            await asyncio.sleep(0.1)
        writer.write(then)

    return answer


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_keep_alives_longer_than_stream_timeout_then_content_give_the_answer(api: str) -> None:
    body, text = (CHAT + b"data: [DONE]\n\n", "The answer.") if api == "chat" else (RESPONSES, "Hi.")
    async with serve(keep_alives(1.0, body)) as peer:
        response, took = await outcome(call(api, peer, stream_timeout=0.4))
    assert isinstance(response, rxstream.Response) and response.text == text and response.complete
    assert peer.posts == 1 and took >= 1.0


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_keep_alives_alone_end_at_content_timeout_saying_queued(api: str) -> None:
    async with serve(keep_alives(30, b"")) as peer:
        error, took = await outcome(call(api, peer, stream_timeout=0.4, content_timeout=1.0))
    assert isinstance(error, rxstream.StreamTimeoutError) and (error.kind, error.queued) == ("content", True)
    assert "queued: only keep-alives for 1 s" in str(error)
    assert_empty_partial(error)
    assert peer.posts == 1 and 1.0 <= took < 1.0 + BOUND / 2


def call(api: str, peer: Peer, **extra: Any) -> Awaitable[rxstream.Response]:
    """The chat or the Responses stream at ``peer``, as a caller would ask for it."""
    options: dict[str, Any] = {"token": TOKEN, "request": {"model": "m"}, **extra}
    return (
        rxstream.stream_responses(peer.url, **options)
        if api == "responses"
        else rxstream.stream_sse(peer.url, **options)
    )


# -- done is done: the final event with the connection then held open ------------------------------


def held_open(status_body: bytes) -> Answer:
    async def answer(number: int, writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", "text/event-stream", status_body, streamed=True))

    return answer


ANTHROPIC = b"".join(
    b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(data))
    for name, data in [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi."}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
)
RESPONSES = b"".join(
    b"event: %s\ndata: %s\n\n" % (str(event["type"]).encode(), orjson.dumps(event))
    for event in [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "status": "in_progress"}},
        {
            "type": "response.output_text.delta",
            "sequence_number": 1,
            "item_id": "m",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hi.",
        },
        {"type": "response.completed", "sequence_number": 2, "response": {"id": "resp_1", "status": "completed"}},
    ]
)


@pytest.mark.parametrize(
    "api, body, text, wait",
    [
        ("chat", CHAT + b"data: [DONE]\n\n", "The answer.", 0.0),
        ("anthropic", ANTHROPIC, "Hi.", 0.0),
        ("responses", RESPONSES, "Hi.", 0.0),
        # a finish (stop) reason and no end marker after it: the answer ends FINISH_GRACE later
        ("chat", CHAT, "The answer.", FINISH_GRACE),
        ("anthropic", ANTHROPIC.split(b"event: message_stop")[0], "Hi.", FINISH_GRACE),
    ],
)
async def test_the_final_event_completes_at_once_and_releases_a_connection_held_open(
    api: str, body: bytes, text: str, wait: float
) -> None:
    async with serve(held_open(body), path="/v1/responses" if api == "responses" else "/v1/chat") as peer:
        response, took = await outcome(call("chat" if api == "anthropic" else api, peer, stream_timeout=HELD))
        ended = time.monotonic()
        for _ in range(150):  # the handler sees the close within moments of the drain's end
            if peer.released:
                break
            await asyncio.sleep(0.02)
    assert isinstance(response, rxstream.Response) and response.text == text and response.complete
    assert wait <= took < wait + HELD / 2 and peer.posts == 1  # not the stream_timeout
    # closed at once: a body without a length ends with its connection, which no other call can use
    # (a framed one is offered DRAIN_SECONDS to end, to go back to the pool)
    assert peer.released and peer.released[0] - ended < DRAIN_SECONDS + 1.0


# -- an error the server reports inside the stream: typed, the partial kept, never retried ------------
# Anthropic (https://docs.anthropic.com/en/api/errors): "an error event after a 200 response", such as
# overloaded_error while streaming; the OpenAI Responses API's response.failed.


async def test_an_overloaded_error_event_mid_stream_keeps_the_partial_and_is_not_retried() -> None:
    failed = ANTHROPIC.split(b"event: content_block_stop")[0] + (
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    async with serve(held_open(failed), path="/v1/messages") as peer:
        error, took = await outcome(chat(peer, stream_timeout=HELD))
    assert isinstance(error, rxstream.ResponseFailedError) and error.error_type == "overloaded_error"
    assert error.server_message == "Overloaded" and error.partial is not None and error.partial.text == "Hi."
    assert peer.posts == 1 and took < HELD / 2


async def test_a_response_failed_event_is_typed_with_the_partial_and_not_retried() -> None:
    failed = RESPONSES.split(b"event: response.completed")[0] + (
        b'event: response.failed\ndata: {"type": "response.failed", "sequence_number": 2, "response": '
        b'{"id": "resp_1", "status": "failed", "error": {"code": "server_error", "message": "Overloaded."}}}\n\n'
    )
    async with serve(held_open(failed), path="/v1/responses") as peer:
        error, took = await outcome(rxstream.stream_responses(peer.url, token=TOKEN, request={"model": "m"}))
    assert isinstance(error, rxstream.ResponseFailedError) and (error.code, error.server_message) == (
        "server_error",
        "Overloaded.",
    )
    assert error.partial is not None and error.partial.text == "Hi." and error.partial.id == "resp_1"
    assert peer.posts == 1 and took < HELD / 2


# OpenAI streams a failure as `data: {"error": {...}}` (https://platform.openai.com/docs/guides/error-codes:
# "The server had an error while processing your request"); OpenRouter as a chunk with an error object and
# finish_reason "error" (https://openrouter.ai/docs/api-reference/errors, "Handling errors during streaming").
OPENAI_MID_STREAM = b'data: {"error": {"message": "The server had an error while processing your request.", "type": "server_error", "code": null}}\n\n'
OPENROUTER_MID_STREAM = (
    b'data: {"id": "gen-1", "error": {"code": "server_error", "message": "Provider disconnected"}, '
    b'"choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}\n\n'
)


@pytest.mark.parametrize(
    "failure, message",
    [(OPENAI_MID_STREAM, "The server had an error"), (OPENROUTER_MID_STREAM, "Provider disconnected")],
)
async def test_an_error_event_in_a_chat_stream_keeps_the_partial_and_is_not_retried(
    failure: bytes, message: str
) -> None:
    async with serve(held_open(chunk("The ") + failure)) as peer:
        error, took = await outcome(chat(peer, stream_timeout=HELD))
    assert isinstance(error, rxstream.ResponseFailedError) and error.server_message.startswith(message)
    assert error.partial is not None and error.partial.text == "The " and not error.partial.complete
    assert peer.posts == 1 and took < HELD / 2  # at once, and no second (paid) completion


async def test_a_server_that_never_answers_the_request_ends_at_stream_timeout() -> None:
    async def silent(number: int, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(BOUND)  # accepted, the request read, and no status line

    async with serve(silent) as peer:
        error, took = await outcome(chat(peer, stream_timeout=0.3))
    assert isinstance(error, rxstream.StreamTimeoutError) and error.kind == "idle"
    assert_empty_partial(error)
    assert peer.posts == 1 and took < 0.3 + 1.0  # before: waited for ever (httpx reads without a timeout)


async def test_responses_in_websocket_mode_complete_at_the_final_event_with_the_connection_held_open() -> None:
    released: list[float] = []

    async def hold_open(connection: ServerConnection) -> None:
        assert orjson.loads(await connection.recv())["type"] == "response.create"
        for event in RESPONSES.split(b"\n\n")[:-1]:
            await connection.send(event.split(b"data: ", 1)[1].decode())  # each event as one message
        await connection.wait_closed()  # sends nothing more and never closes: only the client can
        released.append(time.monotonic())

    async with serve_websocket(hold_open, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/responses"
        response, took = await outcome(rxstream.stream_responses(url, request={"model": "m"}, stream_timeout=HELD))
        ended = time.monotonic()
        for _ in range(100):
            if released:
                break
            await asyncio.sleep(0.02)
    assert isinstance(response, rxstream.Response) and response.text == "Hi." and response.complete
    assert took < HELD / 2 and released and released[0] - ended < HELD / 2  # the client closed it at once
