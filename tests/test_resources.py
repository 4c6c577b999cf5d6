"""Resources released (issue 25 §7): a handler ends when its peer goes away, a connection whose polite
close is cut short is aborted, and an iterator abandoned without ``aclose`` lets go of its stream."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import rxstream
from rxstream.server import Faults, ReferenceResponsesServer, ReferenceSSEServer

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
                rxstream.stream_sse(server.url, json=rxstream.chat_request("m", "hi"), stream_timeout=0.2)
                if server_type == "sse"
                else rxstream.stream_responses(server.url, json=rxstream.responses_request("m", "hi"), stream_timeout=0.2)
            )
            with pytest.raises(rxstream.StreamError) as caught:
                await asyncio.wait_for(call, 5)
            assert caught.value.partial is not None and TEXT.startswith(caught.value.partial.text)
        # before: each handler waited, in CLOSE-WAIT, for a close that only server.close() would make
        assert await until(lambda: not others(baseline)), others(baseline)
