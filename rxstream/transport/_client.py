"""The HTTP client a source uses when it is given none: one per event loop, closed as the loop shuts down.

Why one per loop, rather than a ``Client`` object that users open with ``async with``: the
module functions (``stream_sse(url, …)``) are how most code calls rxstream, and they must not
build a client per call (an ``httpx.AsyncClient`` makes an SSL context, ~20 ms of CPU, and
pools nothing: 200 concurrent calls peaked at 216 MB against 53 MB shared). A client object
would still need such a default behind the module functions, since an httpx client's
connections belong to the loop that opened them. So the default is per loop, and ``client=``
stays the way to own a pool (an ``httpx.AsyncClient``: its limits, proxies, certificates).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator

import httpx

# A stream holds its connection for the whole response: a cap on connections would queue one
# stream behind another's answer, which a client per call never did. Idle ones are kept, up to
# as many as httpx's own default, for the next call to the same host.
LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=100, keepalive_expiry=5.0)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None]]] = (
    weakref.WeakKeyDictionary()
)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One SSL context for the process (httpx's, certifi's roots or ``SSL_CERT_FILE``): every loop's client shares it."""
    return httpx.create_ssl_context()


async def default_client() -> httpx.AsyncClient:
    """The running loop's shared client, made on first use; never one of another loop."""
    loop = asyncio.get_running_loop()
    held = _clients.get(loop)
    if held is not None and not held[0].is_closed:
        return held[0]
    client = httpx.AsyncClient(verify=ssl_context(), limits=LIMITS)
    keeper = _closed_at_shutdown(loop, client)
    await anext(keeper)  # its first step registers it with the loop, whose shutdown_asyncgens closes it
    _clients[loop] = (client, keeper)
    return client


async def _closed_at_shutdown(loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> AsyncGenerator[None]:
    # asyncio.run (and any runner calling loop.shutdown_asyncgens) closes every async generator
    # still suspended once the main task is done: the one hook a loop offers before it closes.
    try:
        yield
    finally:
        held = _clients.get(loop)
        if held is not None and held[0] is client:
            del _clients[loop]  # the entry holds the loop through the client's connections
        await client.aclose()


def request_timeout(given: httpx.AsyncClient | None, stream_timeout: float) -> httpx.Timeout:
    """A request's timeouts: a given client's own; on the default one, ``stream_timeout`` to connect, write
    and wait for the pool, and none to read, since the source's Watchdog times the reads."""
    return given.timeout if given is not None else httpx.Timeout(stream_timeout, read=None)


# The end of a body comes with its last event, or moments after: a server that holds the connection
# open past its final event must not keep it (and this subscription's task) for long.
DRAIN_SECONDS = 0.1
DRAIN_BYTES = 2**16


def reusable(response: httpx.Response) -> bool:
    """Whether ``response``'s connection may serve another request once its body ends: not when the
    server closes it after this body (``Connection: close``, HTTP/1.0, a body without a length that
    its closing ends), so reading on to that end would only delay the close."""
    if response.http_version == "HTTP/1.0" or "close" in response.headers.get("Connection", "").lower():
        return False
    return (
        response.http_version != "HTTP/1.1"
        or "Content-Length" in response.headers
        or ("chunked" in response.headers.get("Transfer-Encoding", "").lower())
    )


async def release(body: AsyncIterator[bytes]) -> None:
    """Read what is left of a body the pipeline is done with, if it ends soon (``DRAIN_BYTES`` within
    ``DRAIN_SECONDS``): read to its end, its connection goes back to the pool; left unread, it is closed.
    The OpenAI SDK, too, reads a stream to its end after ``[DONE]``."""
    left = DRAIN_BYTES
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for data in body:
                left -= len(data)
                if left < 0:
                    return
    except (TimeoutError, httpx.TransportError):
        pass  # the connection is closed instead, as before
