"""Resources released (issue 25 §7): a handler ends when its peer goes away, a connection whose polite
close is cut short is aborted, and an iterator abandoned without ``aclose`` lets go of its stream."""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import pytest

import rxstream
from rxstream.server import Faults, ReferenceResponsesServer, ReferenceSSEServer
from rxstream.server._sse import until_gone

from .support import loopback, read_request, websocket_upgrade

pytestmark = pytest.mark.network

TEXT = "Every handler ends when its client leaves. " * 20


async def until(condition: Any, seconds: float = 3.0) -> bool:
    """Whether ``condition()`` became true within ``seconds``, looking every 20 ms."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return bool(condition())


def others(baseline: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """The tasks running now that were not at ``baseline`` (a server's handlers, a stream's tasks)."""
    return {task for task in asyncio.all_tasks() if task not in baseline and not task.done()}


@pytest.mark.parametrize("server_type", ["sse", "responses"])
async def test_a_stalled_reference_handler_ends_when_the_client_gives_up(server_type: str) -> None:
    faults = Faults(stall_after=5, repeat=0)  # every connection stalls: `rxstream serve --responses` in issue 25
    server: ReferenceSSEServer | ReferenceResponsesServer
    if server_type == "sse":
        server = ReferenceSSEServer(TEXT, chunk_size=8, faults=faults)
    else:
        server = ReferenceResponsesServer(TEXT, chunk_size=8, faults=faults)
    async with server:
        baseline = set(asyncio.all_tasks())
        for _ in range(3):
            call = (
                rxstream.stream_sse(server.url, request=rxstream.chat_request("m", "hi"), stream_timeout=0.2)
                if server_type == "sse"
                else rxstream.stream_responses(
                    server.url, request=rxstream.responses_request("m", "hi"), stream_timeout=0.2
                )
            )
            with pytest.raises(rxstream.StreamError) as caught:
                await asyncio.wait_for(call, 5)
            assert caught.value.partial is not None and TEXT.startswith(caught.value.partial.text)
        # before: each handler waited, in CLOSE-WAIT, for a close that only server.close() would make
        assert await until(lambda: not others(baseline)), others(baseline)


CLIENT = """
import asyncio, sys
import rxstream

async def main():
    try:
        await rxstream.stream(sys.argv[1], request={"prompt": "hi"}, stream_timeout=5)
    except rxstream.StreamError as error:
        print(type(error).__name__)

asyncio.run(main())  # returns at once: the polite close, still waiting for the peer, is cancelled
"""


async def test_a_close_the_peer_never_answers_leaves_no_socket_open_when_the_program_ends() -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await websocket_upgrade(reader) + b"\x81\x05{bad}")  # a text frame that is not JSON
        await writer.drain()
        await until_gone(reader)  # reads the client's close frame, and never answers it

    async with loopback(deaf) as origin:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-X",
            "dev",
            "-W",
            "always::ResourceWarning",
            "-c",
            CLIENT,
            origin.replace("http", "ws"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert out.decode().strip() == "FrameError" and process.returncode == 0
    assert b"ResourceWarning" not in err and b"unclosed" not in err, err.decode()


async def test_an_iterator_dropped_without_aclose_releases_its_connection() -> None:
    released = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        sending = asyncio.ensure_future(send_forever(writer))
        await until_gone(reader)
        sending.cancel()
        released.set()

    async def send_forever(writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(b'data: {"choices": [{"index": 0, "delta": {"content": "more "}}]}\n\n')
            await writer.drain()
            await asyncio.sleep(0.05)

    async with loopback(endless) as origin:
        events = rxstream.to_async_iterable(rxstream.from_sse(origin + "/v1/chat/completions", request={"model": "m"}))
        assert (await anext(events)).data.startswith('{"choices"')
        del events  # neither aclose nor the end of the stream: demand stays paused, no timer fires
        gc.collect()
        await asyncio.wait_for(released.wait(), 5)  # before: held until the process ended
