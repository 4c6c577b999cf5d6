"""rxstream's pytest plugin (entry point ``pytest11``): the reference servers with seeded faults, and a virtual clock.

Each server runs on an event loop of its own in a thread, so a test's own loop (any, or none)
connects to it over loopback as to a real endpoint, and it is closed when the test ends. The
faults' seed comes from the test's id: the same faults every run, others in another test.
Only pytest and rxstream's server are needed: hypothesis is not imported here.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ..transport._clock import VirtualClock

if TYPE_CHECKING:  # the servers (websockets, httpx) load with the first fixture that starts one, not with pytest
    from ..server import Faults, ReferenceResponsesServer, ReferenceServer, ReferenceSSEServer

_T = TypeVar("_T")
Server = TypeVar("Server", "ReferenceServer", "ReferenceSSEServer", "ReferenceResponsesServer")


class LoopThread:
    """An event loop running in a thread of its own, for servers a test talks to from its own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rxstream reference servers", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


def seeded(faults: Faults | str | None, seed: int) -> Faults:
    """``faults`` as given; a ``--faults``-style string gets the test's seed unless it names one."""
    from ..server import Faults

    if isinstance(faults, Faults):
        return faults
    parsed = Faults.parse(faults or "")
    return parsed if "seed" in (faults or "") else replace(parsed, seed=seed)


def serving(kind: type[Server], seed: int) -> Iterator[Callable[..., Server]]:
    """A fixture's factory of started servers of ``kind``, all closed at the end of the test."""
    loop: LoopThread | None = None
    started: list[Server] = []

    def start(text: str, *, faults: Faults | str | None = None, **options: Any) -> Server:
        nonlocal loop
        loop = loop or LoopThread()
        server = kind(text, faults=seeded(faults, seed), **options)
        started.append(loop.run(server.start()))
        return server

    yield start
    if loop is not None:
        for server in started:
            loop.run(server.close())
        loop.stop()


@pytest.fixture
def rxstream_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's faults: from its id, so every run sees the same ones."""
    return zlib.crc32(request.node.nodeid.encode())


@pytest.fixture
def reference_server(rxstream_seed: int) -> Iterator[Callable[..., ReferenceServer]]:
    """Starts a ``ReferenceServer`` (the chunk protocol over WebSocket): ``reference_server(text,
    faults="reorder=8,drop=1", token="t")``; its ``uri`` is where to connect."""
    from ..server import ReferenceServer

    yield from serving(ReferenceServer, rxstream_seed)


@pytest.fixture
def reference_sse_server(rxstream_seed: int) -> Iterator[Callable[..., ReferenceSSEServer]]:
    """Starts a ``ReferenceSSEServer`` (OpenAI-compatible chat completions): ``reference_sse_server(text,
    faults="abort_after=5")``; its ``url`` is where to POST."""
    from ..server import ReferenceSSEServer

    yield from serving(ReferenceSSEServer, rxstream_seed)


@pytest.fixture
def reference_responses_server(rxstream_seed: int) -> Iterator[Callable[..., ReferenceResponsesServer]]:
    """Starts a ``ReferenceResponsesServer`` (OpenAI Responses over SSE and WebSocket): its ``url``
    and ``websocket_url``."""
    from ..server import ReferenceResponsesServer

    yield from serving(ReferenceResponsesServer, rxstream_seed)


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A clock whose sleeps return at once, recording them: pass it as ``clock=`` to skip backoff and check its schedule."""
    return VirtualClock()
