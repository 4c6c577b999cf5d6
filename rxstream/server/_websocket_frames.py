"""The few WebSocket frames an endpoint on asyncio streams writes and reads, framed by websockets' sans-I/O code:
the 101 answer, unmasked text and close frames, and one masked message from the client."""

from __future__ import annotations

import asyncio

from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader
from websockets.utils import accept_key

MAX_REQUEST = 2**20  # the largest request message read


def handshake(key: str) -> bytes:
    """The 101 answer to a handshake that sent ``Sec-WebSocket-Key: key``."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    ).encode()


def text_frame(data: bytes) -> bytes:
    """``data`` as one text message, unmasked as a server sends it."""
    return Frame(Opcode.TEXT, data).serialize(mask=False)


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    return Frame(Opcode.CLOSE, Close(code, reason).serialize()).serialize(mask=False)


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """The client's first frame (a request fits in one); ``ConnectionError`` if it leaves first."""
    buffer = StreamReader()
    parser = Frame.parse(buffer.read_exact, mask=True, max_size=MAX_REQUEST)
    while True:
        try:
            next(parser)
        except StopIteration as parsed:
            frame: Frame = parsed.value
            break
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("the client left before its request")
        buffer.feed_data(data)
    if frame.opcode is Opcode.CLOSE:
        raise ConnectionError("the client closed before its request")
    return bytes(frame.data)
