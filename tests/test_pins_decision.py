"""The recovery decision as a WebSocket ending reaches it (issue 23, item 8): the close frames a
real websockets protocol object received or sent, read into an ``Ending`` by the connection and
decided, without a socket; and a close code's reason as the README shows it."""

from __future__ import annotations

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.uri import parse_uri
from websockets.utils import accept_key

import rxstream
from rxstream.core._redaction import Secrets
from rxstream.protocol._decision import DONE, Ending, Fail, Retry, decide
from rxstream.transport._push_connection import PushConnection

E = "ws://host/stream"
POLICY = rxstream.RetryPolicy()


def connection(max_size: int = 1024) -> tuple[PushConnection, ClientProtocol]:
    """A connection whose sans-I/O protocol went through the opening handshake (RFC 6455 §4)."""
    protocol = ClientProtocol(parse_uri(E), max_size=max_size)
    request = protocol.connect()
    protocol.send_request(request)
    protocol.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(request.headers["Sec-WebSocket-Key"]).encode() + b"\r\n\r\n"
    )
    return PushConnection(protocol), protocol


def closed_by_peer(code: int, reason: str) -> PushConnection:
    pushed, protocol = connection()
    protocol.receive_data(Frame(Opcode.CLOSE, Close(code, reason).serialize()).serialize(mask=False))
    return pushed


def decided(ending: Ending) -> object:
    return decide(ending, endpoint=E, policy=POLICY, failures=0)


async def test_a_normal_close_before_the_final_chunk_is_retried_and_after_it_is_done() -> None:
    # README: "a stream closed (1000) before its final chunk ... reconnects"; 1000 and 1001 end it
    # when nothing more is awaited.
    for code in (1000, 1001):
        assert decided(closed_by_peer(code, "bye").ending(False, Secrets())) is DONE
    retry = decided(closed_by_peer(1000, "bye").ending(True, Secrets()))
    assert isinstance(retry, Retry) and retry.reason == "the server closed before the final chunk"


async def test_a_connection_dropped_without_a_close_frame_counts_as_1006_and_is_retried() -> None:
    # RFC 6455 §7.1.5: "If _The WebSocket Connection is Closed_ and no Close control frame was
    # received by the endpoint ... _The WebSocket Connection Close Code_ is considered to be 1006."
    pushed, _ = connection()
    ending = pushed.ending(True, Secrets())
    assert ending.close_code == 1006
    retry = decided(ending)
    assert isinstance(retry, Retry) and retry.reason == "connection lost (close code 1006)"
    assert decided(pushed.ending(False, Secrets())) is not DONE  # a drop is never a clean end


async def test_a_message_over_max_size_is_frame_too_large() -> None:
    # websockets closes with 1009 (message too big) when a message exceeds max_size, and the README
    # says a frame above max_size is FrameTooLargeError, not retried.
    pushed, protocol = connection(max_size=1024)
    protocol.receive_data(Frame(Opcode.BINARY, b"x" * 1025).serialize(mask=False))
    assert protocol.close_sent is not None and protocol.close_sent.code == 1009
    failed = decided(pushed.ending(True, Secrets()))
    assert isinstance(failed, Fail) and isinstance(failed.error, rxstream.FrameTooLargeError)
    assert failed.error.max_size == 1024


@pytest.mark.parametrize(
    "ending, reason",
    [
        # As the CLI prints it: "reconnecting in 2.0 s (2/3): connection lost (close code 1006)" (README).
        (Ending(close_code=1006), "connection lost (close code 1006)"),
        (Ending(close_code=1001, reason="going away"), "connection lost (close code 1001: going away)"),
    ],
)
def test_a_close_codes_retry_says_the_code_and_the_peers_reason(ending: Ending, reason: str) -> None:
    retry = decided(ending)
    assert isinstance(retry, Retry) and retry.reason == reason


def test_close_code_1008_without_a_reason_says_policy_violation() -> None:
    # RFC 6455 §7.4.1: 1008 "indicates that an endpoint is terminating the connection because it
    # has received a message that violates its policy"; README: it is an AuthenticationError.
    failed = decided(Ending(close_code=1008))
    assert isinstance(failed, Fail) and isinstance(failed.error, rxstream.AuthenticationError)
    assert "close code 1008: policy violation" in str(failed.error)
