"""A real browser reads a stream through the relay: headless Chromium's EventSource, its connection cut
twice and the relay process killed and started again mid-stream, shows exactly the writer's text.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it when missing), driven through the
DevTools protocol over a WebSocket. Without it the test skips, unless RXSTREAM_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

import rxstream
from rxstream import operators as rxo

from .services import REDIS, missing, redis_prefix  # noqa: F401  (the fixture)
from .support import frame

redis_asyncio = pytest.importorskip("redis.asyncio")
pytest.importorskip("starlette")
pytestmark = pytest.mark.network
CHUNKS = 400
PAUSES = {100: "cut", 200: "cut", 300: "restart"}  # after this many chunks, the writer waits for the fault


class CuttableProxy:
    """A TCP proxy to the relay that can cut every connection at once (as a mobile network does), and
    be pointed at another relay process."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.transports: set[asyncio.WriteTransport] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.connected, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:  # the relay is down: the browser sees a network error and tries again
            writer.transport.abort()
            return
        pair = {writer.transport, upstream_writer.transport}
        self.transports |= pair

        async def pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    target.write(data)
                    await target.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                target.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.transports -= pair

    def cut(self) -> None:
        for transport in list(self.transports):
            transport.abort()

    def close(self) -> None:
        assert self.server is not None
        self.cut()
        self.server.close()


async def start_relay(prefix: str) -> tuple[subprocess.Popen[bytes], int]:
    """``rxstream relay`` in a process of its own, on a free port, once it answers."""
    port = await free_port()
    command = [sys.executable, "-m", "rxstream", "relay", "--redis", REDIS.url, "--prefix", prefix]
    process = subprocess.Popen([*command, "--port", str(port), "--reconnect-ms", "200"], stderr=subprocess.DEVNULL)
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.get(f"http://127.0.0.1:{port}/")
                return process, port
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError("the relay did not start")


async def free_port() -> int:
    server = await asyncio.start_server(lambda *_: None, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, page: ClientConnection) -> None:
        self.page = page
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> Any:
        self.next_id += 1
        await self.page.send(orjson.dumps({"id": self.next_id, "method": method, "params": params}).decode())
        while True:
            message = orjson.loads(await self.page.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    async def shown(self) -> tuple[str, str, int, int]:
        """The page's text, its state, the events it got out of place and the times its connection failed."""
        expression = (
            "(() => { const s = document.getElementById('state'), t = document.getElementById('text');"
            " if (!s || !t) return JSON.stringify(['', 'loading', 0, 0]);"
            " return JSON.stringify([t.textContent, s.textContent, +(s.dataset.misplaced || 0),"
            " +(s.dataset.reconnects || 0)]); })()"
        )
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        text, state, misplaced, reconnects = orjson.loads(result["result"]["value"])
        return text, state, misplaced, reconnects


@asynccontextmanager
async def chromium(path: str, profile: str) -> AsyncIterator[Browser]:
    process = subprocess.Popen(
        [
            path,
            "--headless",
            "--no-sandbox",  # as root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: its renderer and helpers go with it
    )
    try:
        active = Path(profile) / "DevToolsActivePort"
        for _ in range(400):
            if active.exists() and len(active.read_text().splitlines()) == 2:
                break
            await asyncio.sleep(0.05)
        port = active.read_text().splitlines()[0]
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
        page_url = next(target["webSocketDebuggerUrl"] for target in targets if target["type"] == "page")
        async with connect(page_url, max_size=None) as page:
            yield Browser(page)
    finally:
        # The whole group, and until it is gone: a helper still writing to the profile made its
        # removal fail ("Directory not empty").
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for _ in range(100):
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.05)


async def until(browser: Browser, done: Any, timeout: float = 30) -> tuple[str, str, int, int]:
    async with asyncio.timeout(timeout):
        while not done(shown := await browser.shown()):
            await asyncio.sleep(0.05)
    return shown


# What the page relies on is the browser's own EventSource, as the WHATWG HTML standard has it
# (html.spec.whatwg.org/multipage/server-sent-events.html, "Processing model"): a connection lost to a
# network error is reestablished after the reconnection time (the relay's retry field), with the last
# event id seen sent as the Last-Event-ID header; an HTTP error instead would end it for good.
async def test_a_browser_shows_exactly_the_text_through_two_cuts_and_a_relay_restart(
    redis_prefix: str,  # noqa: F811
) -> None:
    path = shutil.which("chromium")
    if path is None:
        missing("no chromium on PATH for the browser test (Debian's chromium package; .ci/run installs it)")
        return
    pieces = [f"{i}: 流式 «{i % 7}»\n" if i % 5 == 0 else f"{i} " for i in range(CHUNKS)]
    faults_done = {at: asyncio.Event() for at in PAUSES}

    async def frames() -> AsyncIterator[bytes]:
        for index, piece in enumerate(pieces):
            if index in faults_done:
                await faults_done[index].wait()  # mid-stream, whatever the machine's speed
            await asyncio.sleep(0.002)
            yield frame(index, piece, index == CHUNKS - 1)

    redis = redis_asyncio.from_url(REDIS.url)
    sink = rxstream.RedisStreamSink(redis, f"{redis_prefix}answer")
    operators: list[Callable[[Any], Any]] = [
        rxo.parse(),
        rxo.reorder(),
        rxo.backpressure_buffer(),
        rxo.accumulate(),
        rxo.publish(sink),
        rxo.finalize(),
    ]
    writer = asyncio.ensure_future(rxstream.from_async_iterable(frames()).pipe(*operators))
    relay, port = await start_relay(redis_prefix)
    proxy = CuttableProxy(port)
    await proxy.start()
    try:
        with tempfile.TemporaryDirectory() as profile:
            async with chromium(path, profile) as browser:
                await browser.call("Page.navigate", url=f"http://127.0.0.1:{proxy.port}/?key=answer")
                for at, fault in PAUSES.items():
                    await until(browser, lambda shown, at=at: shown[0] == "".join(pieces[:at]))
                    if fault == "cut":
                        proxy.cut()
                    else:  # the worker dies; the browser's reconnect reaches another one
                        relay.kill()
                        relay.wait()
                        relay, proxy.upstream_port = await start_relay(redis_prefix)
                    faults_done[at].set()
                text, state, misplaced, reconnects = await until(browser, lambda shown: shown[1] != "streaming")
        response = await asyncio.wait_for(writer, 30)
        assert state == "done"
        assert text == response.text == "".join(pieces)
        assert misplaced == 0
        assert reconnects >= 3
    finally:
        proxy.close()
        relay.kill()
        relay.wait()
        await redis.aclose()
