"""No secret leaks: peers we did not write reflect the bearer token into everything the client reports or logs.

Every peer here echoes the ``Authorization`` header it received: in a close reason, a
response header, the HTTP status line, a redirect, an SSE error event. Whatever rxstream
makes of that (the error's str and repr, the traceback with its whole chain, the CLI's
line on stderr, any log record) must not contain the token.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import subprocess
import sys
import traceback
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

import rxstream
from rxstream.core._errors import FrameError
from rxstream.core._redaction import Secrets

TOKEN = "sk-reflected-Qx7v2Lm9"
CONTROL = "\r\n\x1b[2J\x07\u2028"  # line breaks, an ANSI escape, a bell, a Unicode line separator


def rotating_tokens() -> tuple[Callable[[], str], list[str]]:
    """A token callable that gives every connection a new secret, and the list of those it gave."""
    given: list[str] = []
    numbers = itertools.count()

    def token() -> str:
        given.append(f"{TOKEN}-{next(numbers)}")
        return given[-1]

    return token, given


def shown(error: BaseException) -> str:
    """Everything a report of ``error`` shows: the traceback with its chain, and str and repr of each link."""
    parts = ["".join(traceback.format_exception(error))]
    link: BaseException | None = error
    while link is not None:
        parts += [str(link), repr(link)]
        link = link.__cause__ if link.__cause__ is not None else None if link.__suppress_context__ else link.__context__
    return "\n".join(parts)


def assert_clean(error: BaseException, secrets: list[str]) -> None:
    report = shown(error)
    for secret in secrets:
        assert secret not in report, report
    assert str(error).isprintable(), str(error)  # one line: no control characters, no line separators


def bearer(authorization: str) -> str:
    return authorization.removeprefix("Bearer ")


@asynccontextmanager
async def raw_peer(answer: Callable[[str], bytes]) -> AsyncIterator[int]:
    """An HTTP peer on loopback that reads a request and writes ``answer(its Authorization header)``; its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        authorization = next((value for name, value in fields.items() if name.lower() == "authorization"), "")
        writer.write(answer(authorization))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def quiet_peer() -> logging.Logger:
    """The peers' own websockets logger: it logs the request it received, token and all, which is not ours to redact."""
    return logging.getLogger("peer")


async def failure_of(call: Any) -> BaseException:
    """The exception ``call`` (an awaitable) ends with, within a bounded time."""
    with pytest.raises(rxstream.StreamError) as caught:
        await asyncio.wait_for(call, 30)
    return caught.value


# -- the redaction itself ----------------------------------------------------------------------


def secrets_of(tokens: list[str]) -> Secrets:
    secrets = Secrets()
    for token in tokens:
        secrets.add(token)
    return secrets


def echoing(pieces: list[str], tokens: list[str]) -> str:
    """``pieces`` with the tokens, and their URL-encoded forms, in between."""
    echoes = [echo for token in tokens for echo in (token, urllib.parse.quote(token, safe=""))]
    return "".join(piece + echoes[i % len(echoes)] for i, piece in enumerate(pieces))


def in_word(text: str, at: int) -> bool:
    return 0 <= at < len(text) and re.match(r"\w", text[at]) is not None


def shows(text: str, token: str) -> bool:
    """Whether ``text`` shows ``token``: anywhere, or for a token of 1-3 characters, as a whole word
    (one inside a word is no secret shown: "ab" in "about")."""
    if len(token) >= 4:
        return token in text
    starts = [at for at in range(len(text)) if text.startswith(token, at)]
    return any(not in_word(text, at - 1) and not in_word(text, at + len(token)) for at in starts)


@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3),
    st.lists(st.text(max_size=30), min_size=1, max_size=5),
)
def test_peer_text_never_shows_a_secret_and_stays_on_one_line(tokens: list[str], pieces: list[str]) -> None:
    shown = secrets_of(tokens).peer_text(echoing(pieces, tokens))
    assert shown.isprintable()
    for token in tokens:
        assert not shows(shown, token) and not shows(shown, urllib.parse.quote(token, safe=""))


@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3),
    st.lists(st.text(max_size=150), min_size=1, max_size=5),
)
def test_a_frame_error_never_quotes_a_secret(tokens: list[str], pieces: list[str]) -> None:
    frame = echoing(pieces, tokens)
    error = FrameError(frame.encode(), f"the index was {frame!r}", number=3, secrets=secrets_of(tokens))
    for token in tokens:
        assert not shows(str(error), token)


# A two-letter token replaced wherever it occurred made "except" "[redacted]ept" (issue 25 §5).
@pytest.mark.parametrize(
    ("token", "text", "redacted"),
    [
        ("exc", "an exception, except for exc", "an exception, except for [redacted]"),
        ("ab", "Bearer ab about abc ab.", "Bearer [redacted] about abc [redacted]."),
        ("7", "retry 7 in 17 s", "retry [redacted] in 17 s"),
    ],
)
def test_a_short_token_is_redacted_whole_and_words_holding_it_are_left_alone(
    token: str, text: str, redacted: str
) -> None:
    assert secrets_of([token]).redact(text) == redacted


def test_a_long_token_is_redacted_even_inside_a_word() -> None:
    assert secrets_of(["sk-1234"]).redact("xsk-1234y") == "x[redacted]y"


def test_a_token_across_the_quote_limit_is_redacted_whole() -> None:
    error = FrameError("x" * 185 + TOKEN + "y" * 50, "not a chunk", secrets=secrets_of([TOKEN]))
    assert TOKEN[:6] not in str(error) and "x[redacted]y" in str(error)  # redacted, then cut: no part of it left


# -- WebSocket ---------------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize("rotating", [False, True], ids=["str", "callable"])
async def test_a_close_reason_reflecting_the_token_is_redacted_and_one_line(rotating: bool) -> None:
    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        await connection.close(1008, f"unknown key {connection.request.headers['Authorization']}{CONTROL}try again")

    token, given = rotating_tokens() if rotating else (TOKEN, [TOKEN])
    async with serve(handler, "127.0.0.1", 0, logger=quiet_peer()) as server:
        port = server.sockets[0].getsockname()[1]
        error = await failure_of(rxstream.stream(f"ws://127.0.0.1:{port}/v1/stream", token=token, request={}))
    assert isinstance(error, rxstream.AuthenticationError)
    assert_clean(error, given)
    assert "unknown key Bearer [redacted]" in str(error) and "try again" in str(
        error
    )  # the peer's words, less the token


@pytest.mark.network
async def test_a_handshake_header_reflecting_each_token_is_redacted() -> None:
    def reflect(connection: ServerConnection, request: Request, response: Response) -> Response:
        del response.headers["Sec-WebSocket-Accept"]
        response.headers["Sec-WebSocket-Accept"] = request.headers["Authorization"]
        return response

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()

    token, given = rotating_tokens()
    async with serve(handler, "127.0.0.1", 0, process_response=reflect, logger=quiet_peer()) as server:
        port = server.sockets[0].getsockname()[1]
        error = await failure_of(
            rxstream.stream(f"ws://127.0.0.1:{port}/", token=token, request={}, clock=rxstream.VirtualClock())
        )
    assert len(given) == 4  # a new token for each of the four tries, every one of them kept out
    assert isinstance(error, rxstream.ConnectionLostError)
    assert_clean(error, given)
    assert "Sec-WebSocket-Accept" in str(error)


@pytest.mark.network
async def test_a_status_line_reflecting_the_token_is_kept_out_of_the_chain() -> None:
    # An invalid reason phrase: websockets' parse error quotes it, and its InvalidMessage carries that as the cause.
    async with raw_peer(lambda authorization: f"HTTP/1.1 401 {authorization}\x01\r\n\r\n".encode()) as port:
        error = await failure_of(
            rxstream.stream(f"ws://127.0.0.1:{port}/", token=TOKEN, request={}, clock=rxstream.VirtualClock())
        )
    assert isinstance(error, rxstream.ConnectionLostError)
    assert_clean(error, [TOKEN])


@pytest.mark.network
async def test_a_redirect_to_a_location_holding_the_token_is_redacted() -> None:
    def redirect(authorization: str) -> bytes:
        return f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/{bearer(authorization)}\r\nContent-Length: 0\r\n\r\n".encode()

    async with raw_peer(redirect) as port:
        error = await failure_of(
            rxstream.stream(f"ws://127.0.0.1:{port}/", token=TOKEN, request={}, clock=rxstream.VirtualClock())
        )
    assert isinstance(error, rxstream.TransportError)
    assert_clean(error, [TOKEN])
    assert "http://127.0.0.1:9/[redacted]" in str(error)


@pytest.mark.network
async def test_a_frame_reflecting_the_token_is_quoted_redacted() -> None:
    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        await connection.recv()
        await connection.send(
            orjson.dumps({"chunk": {"index": connection.request.headers["Authorization"], "data": ""}})
        )
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0, logger=quiet_peer()) as server:
        port = server.sockets[0].getsockname()[1]
        error = await failure_of(rxstream.stream(f"ws://127.0.0.1:{port}/", token=TOKEN, request={}))
    cause = error
    assert (
        isinstance(cause, FrameError) and isinstance(cause.frame, bytes) and TOKEN.encode() in cause.frame
    )  # nothing received is lost: the frame itself is intact
    assert_clean(error, [TOKEN])


# -- SSE ---------------------------------------------------------------------------------------


@pytest.mark.network
async def test_an_sse_status_line_reflecting_the_token_is_redacted() -> None:
    # A letter in the status code: h11's parse error quotes the whole line.
    async with raw_peer(lambda authorization: f"HTTP/1.1 4O1 {authorization}\r\n\r\n".encode()) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        error = await failure_of(rxstream.stream_sse(url, token=TOKEN, request={}, clock=rxstream.VirtualClock()))
    assert isinstance(error, rxstream.ConnectionLostError)
    assert_clean(error, [TOKEN])


def sse_error_event(authorization: str) -> bytes:
    event = orjson.dumps(
        {"error": {"message": f"Incorrect API key provided: {authorization}", "code": "invalid_api_key"}}
    )
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: " + event + b"\n\n"


@pytest.mark.network
@pytest.mark.parametrize("rotating", [False, True], ids=["str", "callable"])
async def test_an_sse_error_event_reflecting_the_token_is_redacted(rotating: bool) -> None:
    token, given = rotating_tokens() if rotating else (TOKEN, [TOKEN])
    async with raw_peer(sse_error_event) as port:
        error = await failure_of(
            rxstream.stream_sse(f"http://127.0.0.1:{port}/v1/chat/completions", token=token, request={})
        )
    assert isinstance(error, rxstream.ResponseFailedError)  # the server's report, typed
    assert_clean(error, given)
    assert "Incorrect API key provided: Bearer [redacted]" in str(error)


# -- the command line --------------------------------------------------------------------------


def connect_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxstream", "connect", *args, "--token-env", "RX_SECRET"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RX_SECRET": TOKEN},
    )


@pytest.mark.network
async def test_the_cli_prints_one_line_without_a_token_the_close_reason_reflects() -> None:
    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        await connection.close(1008, f"unknown key {connection.request.headers['Authorization']}\nsecond line")

    async with serve(handler, "127.0.0.1", 0, logger=quiet_peer()) as server:
        port = server.sockets[0].getsockname()[1]
        result = await asyncio.to_thread(connect_cli, f"ws://127.0.0.1:{port}/")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rxstream connect: error:"), result.stderr
    assert TOKEN not in result.stderr + result.stdout and "rejected the credentials" in result.stderr


@pytest.mark.network
async def test_the_cli_prints_one_line_without_a_token_an_sse_error_reflects() -> None:
    async with raw_peer(sse_error_event) as port:
        result = await asyncio.to_thread(
            connect_cli, f"http://127.0.0.1:{port}/v1/chat/completions", "--sse", "--model", "m", "--prompt", "p"
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rxstream connect: error:"), result.stderr
    assert TOKEN not in result.stderr + result.stdout and "Incorrect API key" in result.stderr


# -- logs --------------------------------------------------------------------------------------


class Records(logging.Handler):
    """Every record any logger emits, at every level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def ours(self) -> list[logging.LogRecord]:
        """The client side's records: the peer's own logger is the peer's business."""
        return [record for record in self.records if not record.name.startswith("peer")]


@pytest.fixture
def records() -> Iterator[Records]:
    """What ``logging.basicConfig(level=logging.DEBUG)`` would print, kept for inspection."""
    root = logging.getLogger()
    handler, level = Records(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def assert_unlogged(records: Records, secrets: list[str], loggers: tuple[str, ...]) -> None:
    ours = records.ours()
    assert {record.name.split(".")[0] for record in ours} >= set(loggers)  # the libraries did log, at debug
    for record in ours:
        text = f"{record.getMessage()} {record.args!r} {logging.Formatter().format(record)}"
        for secret in secrets:
            assert secret not in text, text


@pytest.mark.network
async def test_no_log_record_of_a_websocket_stream_holds_the_token(records: Records) -> None:
    def reflect(connection: ServerConnection, request: Request, response: Response) -> Response:
        response.headers["X-Echo"] = request.headers["Authorization"]
        return response

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        await connection.recv()
        await connection.send(orjson.dumps({"chunk": {"index": 0, "data": "hello", "is_final": True}}))
        await connection.close(1000, f"bye {connection.request.headers['Authorization']}")

    token, given = rotating_tokens()
    async with serve(handler, "127.0.0.1", 0, process_response=reflect, logger=quiet_peer()) as server:
        port = server.sockets[0].getsockname()[1]
        response = await asyncio.wait_for(rxstream.stream(f"ws://127.0.0.1:{port}/", token=token, request={}), 30)
    # Leaving serve waited for the handler, so for the close it sent: the client has logged it.
    assert response.text == "hello" and given
    logged = [record.getMessage() for record in records.ours()]
    for logged_part in ("Authorization", "X-Echo", "CLOSE 1000 (OK) bye"):  # logged, and redacted below
        assert any(logged_part in message for message in logged), logged_part
    assert_unlogged(records, given, ("websockets",))


@pytest.mark.network
async def test_no_log_record_of_an_sse_stream_holds_the_token(records: Records) -> None:
    def answer(authorization: str) -> bytes:
        body = b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
        return (
            f"HTTP/1.1 200 OK {authorization}\r\nContent-Type: text/event-stream\r\nX-Echo: {authorization}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async with raw_peer(answer) as port:
        response = await asyncio.wait_for(
            rxstream.stream_sse(f"http://127.0.0.1:{port}/v1/chat/completions", token=TOKEN, request={}), 30
        )
    assert response.text == "hi"
    assert_unlogged(records, [TOKEN], ("httpx", "httpcore"))
