"""FrameReader: the receive path's own frame reader agrees with websockets' protocol, byte for byte."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.observer import Observer
from websockets.asyncio.client import connect
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import CLIENT, OPEN, SERVER, Protocol

from rxstream.protocol._framing import FrameReader
from rxstream.transport._push_connection import PushConnection
from rxstream.transport._websocket import from_websocket
from tests.support import websocket_upgrade

Seen = list[tuple[str, bytes]]


def close_frame(code: int, reason: str) -> Frame:
    return Frame(Opcode.CLOSE, Close(code, reason).serialize())


def wire(*frames: Frame) -> bytes:
    return b"".join(frame.serialize(mask=False) for frame in frames)


def events_into(protocol: Protocol, seen: Seen, fragments: list[bytes]) -> None:
    """websockets' events as the reader's output reads: messages whole, control frames by name."""
    for event in protocol.events_received():
        assert isinstance(event, Frame)  # after the handshake, websockets' events are frames
        if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            fragments.append(bytes(event.data))
            if event.fin:
                seen.append(("message", b"".join(fragments)))
                fragments.clear()
        else:
            seen.append((event.opcode.name.lower(), bytes(event.data)))


def read(pieces: list[bytes], max_size: int = 2**20) -> tuple[Seen, Protocol, FrameReader]:
    """Feed ``pieces`` to a FrameReader whose other frames go to a websockets client protocol."""
    protocol = Protocol(CLIENT, state=OPEN, max_size=max_size)
    seen: Seen = []
    fragments: list[bytes] = []

    def other(data: bytes) -> bool:
        protocol.receive_data(data)
        events_into(protocol, seen, fragments)
        return protocol.state is OPEN

    reader = FrameReader(lambda messages: seen.extend(("message", message) for message in messages), other, max_size)
    for piece in pieces:
        reader.feed(piece)
    return seen, protocol, reader


def read_by_websockets(pieces: list[bytes], max_size: int = 2**20) -> Seen:
    protocol = Protocol(CLIENT, state=OPEN, max_size=max_size)
    seen: Seen = []
    fragments: list[bytes] = []
    for piece in pieces:
        protocol.receive_data(piece)
        events_into(protocol, seen, fragments)
    return seen


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    return [data[start:stop] for start, stop in zip(points, points[1:], strict=False)]


# Frame sizes around each length encoding: 7 bits, 16 bits (from 126), 64 bits (from 65536).
payloads = st.one_of(
    st.binary(max_size=40),
    st.integers(120, 130).map(lambda n: b"p" * n),
    st.sampled_from([b"q" * 65535, b"r" * 65536]),
)
control = st.tuples(st.sampled_from([Opcode.PING, Opcode.PONG]), st.binary(max_size=125))


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[Frame], Seen]:
    """Frames a server may send (whole messages, fragmented ones with pings between their pieces,
    pings and pongs) and what a reader must make of them, in order."""
    frames: list[Frame] = []
    expected: Seen = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            opcode, data = draw(control)
            frames.append(Frame(opcode, data))
            expected.append((opcode.name.lower(), data))
            continue
        opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY]))
        pieces = draw(st.lists(payloads, min_size=1, max_size=4))
        for number, piece in enumerate(pieces):
            last = number == len(pieces) - 1
            frames.append(Frame(opcode if number == 0 else Opcode.CONT, piece, fin=last))
            if not last and draw(st.booleans()):
                ping = draw(st.binary(max_size=8))
                frames.append(Frame(Opcode.PING, ping))
                expected.append(("ping", ping))
        expected.append(("message", b"".join(pieces)))
    return frames, expected


@settings(max_examples=300, deadline=None)
@given(conversations(), st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_of_any_conversation_reads_as_websockets_reads_it(
    conversation: tuple[list[Frame], Seen], cuts: list[int]
) -> None:
    frames, expected = conversation
    pieces = split(wire(*frames), cuts)
    seen, protocol, reader = read(pieces)
    assert seen == expected == read_by_websockets(pieces)
    assert protocol.state is OPEN and not reader.pending
    pongs = [frame for frame in frames if frame.opcode is Opcode.PING]
    assert len(protocol.data_to_send()) == len(pongs)  # websockets answered every ping


def test_a_large_frame_over_many_reads_is_read_once_and_leaves_nothing_pending() -> None:
    data = wire(Frame(Opcode.TEXT, b"z" * 2**20), Frame(Opcode.TEXT, b"after"))
    seen, _, reader = read(split(data, list(range(0, len(data), 4096))), max_size=2**21)
    assert seen == [("message", b"z" * 2**20), ("message", b"after")]
    assert not reader.pending and not reader.passing


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 5, 9])
def test_a_masked_frame_fails_the_connection_and_nothing_after_it_is_delivered(cut: int) -> None:
    data = (
        wire(Frame(Opcode.TEXT, b"before"))
        + Frame(Opcode.TEXT, b"masked").serialize(mask=True)
        + wire(Frame(Opcode.TEXT, b"after"))
    )
    start = len(wire(Frame(Opcode.TEXT, b"before")))
    seen, protocol, reader = read([data[: start + cut], data[start + cut :]])
    assert seen == [("message", b"before")]
    assert reader.passing and protocol.close_sent is not None and protocol.close_sent.code == 1002


@pytest.mark.parametrize("length", [1025, 70_000, 2**40])
def test_a_payload_over_max_size_fails_from_its_header_with_nothing_buffered(length: int) -> None:
    header = Frame(Opcode.TEXT, b"").serialize(mask=False)[:1] + (
        bytes([126]) + length.to_bytes(2, "big") if length < 65536 else bytes([127]) + length.to_bytes(8, "big")
    )
    seen, protocol, reader = read([wire(Frame(Opcode.TEXT, b"x" * 1024)) + header], max_size=1024)
    assert seen == [("message", b"x" * 1024)]  # max_size itself is allowed
    assert protocol.close_sent is not None and protocol.close_sent.code == 1009
    assert not reader.pending


def test_after_a_close_frame_every_byte_goes_to_websockets() -> None:
    data = wire(Frame(Opcode.TEXT, b"last"), close_frame(1000, "bye"), Frame(Opcode.TEXT, b"too late"))
    seen, protocol, reader = read([data])
    assert seen == [("message", b"last"), ("close", Close(1000, "bye").serialize())]
    assert reader.passing and protocol.close_rcvd == Close(1000, "bye")


def test_a_whole_message_inside_a_fragmented_one_is_a_protocol_error() -> None:
    data = wire(Frame(Opcode.TEXT, b"part", fin=False), Frame(Opcode.TEXT, b"whole"), Frame(Opcode.TEXT, b"after"))
    seen, protocol, reader = read([data])
    assert seen == [] and reader.passing
    assert protocol.close_sent is not None and protocol.close_sent.code == 1002


def test_stop_hands_a_frame_cut_short_to_websockets() -> None:
    data = wire(Frame(Opcode.TEXT, b"whole"), Frame(Opcode.TEXT, b"cut short"))
    seen, protocol, reader = read([data[:-3]])
    reader.stop()
    protocol.receive_eof()
    assert seen == [("message", b"whole")]
    assert isinstance(protocol.parser_exc, EOFError)  # mid-frame, not at a frame boundary


# -- over a real socket: how the handshake and the first frames share reads --------------------------

Write = Callable[[asyncio.StreamWriter, bytes, bytes], Awaitable[None]]


async def serve_raw(write: Write, frames: bytes) -> tuple[asyncio.Server, list[Frame]]:
    """A server on 127.0.0.1 that answers the handshake itself and writes ``frames`` (then a close
    frame) as ``write`` chooses; it records what the client sends back."""
    received: list[Frame] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await write(writer, await websocket_upgrade(reader), frames + wire(close_frame(1000, "")))
        protocol = Protocol(SERVER, state=OPEN)
        while protocol.close_rcvd is None and (data := await asyncio.wait_for(reader.read(65536), 5)):
            protocol.receive_data(data)
            received.extend(event for event in protocol.events_received() if isinstance(event, Frame))
        writer.close()
        await writer.wait_closed()

    return await asyncio.start_server(handle, "127.0.0.1", 0), received


async def in_one_write(writer: asyncio.StreamWriter, response: bytes, frames: bytes) -> None:
    writer.write(response + frames)
    await writer.drain()


async def terminator_split(writer: asyncio.StreamWriter, response: bytes, frames: bytes) -> None:
    writer.write(response[:-1])
    await writer.drain()
    await asyncio.sleep(0.05)  # the client reads the head without its last byte first
    writer.write(response[-1:] + frames)
    await writer.drain()


@pytest.mark.network
@pytest.mark.parametrize("write", [in_one_write, terminator_split])
async def test_frames_arriving_with_the_handshake_response_are_read_from_their_first_byte(
    write: Write, caplog: pytest.LogCaptureFixture
) -> None:
    expected = [b'{"a": 1}', b"x" * 300, b"y" * 70_000]
    conversation = wire(
        Frame(Opcode.TEXT, expected[0]),
        Frame(Opcode.PING, b"are you there"),
        Frame(Opcode.TEXT, expected[1][:100], fin=False),
        Frame(Opcode.CONT, expected[1][100:]),
        Frame(Opcode.BINARY, expected[2]),
    )
    server, received = await serve_raw(write, conversation)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with caplog.at_level(logging.DEBUG, logger="websockets.client"):  # websockets logs each frame it parses
            connection = await connect(f"ws://127.0.0.1:{port}/", create_connection=PushConnection, compression=None)
            assert isinstance(connection, PushConnection)
            messages: list[bytes] = []
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            connection.attach(
                Observer(messages.append), None, lost
            )  # what arrived with the handshake waited in the backlog
            await asyncio.wait_for(lost, 10)  # resolved once the server's close frame has come
            await asyncio.wait_for(connection.wait_closed(), 10)  # and the server has read our answers
    assert messages == expected
    logged = [record.getMessage() for record in caplog.records]
    parsed_by_websockets = [line.split()[1] for line in logged if line.startswith("< ") and line.endswith("]")]
    assert parsed_by_websockets == ["PING", "TEXT", "CONT", "CLOSE"]  # the whole messages were the reader's
    assert [(frame.opcode, frame.data) for frame in received[:1]] == [(Opcode.PONG, b"are you there")]
    assert received[-1].opcode is Opcode.CLOSE


@pytest.mark.network
async def test_from_websocket_reads_a_server_that_pings_and_fragments() -> None:
    server, _ = await serve_raw(
        in_one_write, wire(Frame(Opcode.PING, b""), Frame(Opcode.TEXT, b"a", fin=False), Frame(Opcode.CONT, b"b"))
    )
    async with server:
        port = server.sockets[0].getsockname()[1]
        frames = await asyncio.wait_for(from_websocket(f"ws://127.0.0.1:{port}/", request=None).pipe(ops.to_list()), 10)
    assert frames == [b"ab"]
