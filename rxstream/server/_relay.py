"""The relay's ASGI app (Starlette, the ``rxstream[relay]`` extra): each Redis Stream ``publish`` wrote, as
Server-Sent Events a browser resumes with ``Last-Event-ID`` on any worker, and a page that shows one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ..transport._redis import ENTRY_ID
from ..transport._relay_sse import relay_sse

# The page ``/?key=KEY`` serves: an EventSource on the stream, its text shown as it comes. It closes the
# EventSource at ``done`` or ``failed`` (else the browser reconnects), and counts the events out of order,
# which exactly-once delivery keeps at none.
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>rxstream relay</title>
<style>body { font: 16px/1.5 system-ui; margin: 2em auto; max-width: 45em } pre { white-space: pre-wrap }</style>
<p id="state">connecting</p>
<pre id="text"></pre>
<script>
const key = new URLSearchParams(location.search).get("key") || "";
const text = document.getElementById("text");
const state = document.getElementById("state");
const source = new EventSource("streams/" + encodeURIComponent(key));
let next = null, misplaced = 0, errors = 0;
function show(event) {
  const delta = JSON.parse(event.data);
  if (next !== null && delta.n !== next) misplaced += 1;
  next = delta.n + 1;
  text.append(delta.text);
  state.dataset.misplaced = misplaced;
  state.textContent = "streaming";
}
source.onmessage = show;
source.addEventListener("done", (event) => { show(event); state.textContent = "done"; source.close(); });
source.addEventListener("failed", (event) => {
  state.textContent = "failed: " + JSON.parse(event.data).message;
  source.close();
});
source.onerror = () => { errors += 1; state.dataset.reconnects = errors; };
</script>
"""


def relay_app(
    redis_url: str,
    *,
    prefix: str = "",
    writer_timeout: float = 30.0,
    keepalive: float = 15.0,
    reconnect_ms: int = 1000,
) -> Starlette:
    """An ASGI app serving ``GET /streams/{key}`` (``relay_sse`` of the stream ``prefix + key``) and ``GET /?key=…``
    (a page showing it).

    Any number of these, on any machines, serve the same streams: a browser that reconnects to
    another one resumes after its ``Last-Event-ID`` all the same. A ``Last-Event-ID`` that is not
    an entry id is answered 400.

    Args:
        redis_url: The Redis the writers publish to, as ``redis.asyncio.from_url`` takes it.
        prefix: Put before each key asked for, so that only the streams under it are served.
        writer_timeout: ``relay_sse``'s: how long a stream may go without a new entry.
        keepalive: ``relay_sse``'s: seconds without an event before a comment.
        reconnect_ms: ``relay_sse``'s: the reconnection time sent to browsers.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.redis = redis.asyncio.from_url(redis_url)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    async def events(request: Request) -> Response:
        last_event_id = request.headers.get("last-event-id") or None
        if last_event_id is not None and not ENTRY_ID.fullmatch(last_event_id):
            return PlainTextResponse("Last-Event-ID is not an entry id of this stream\n", status_code=400)
        body = relay_sse(
            request.app.state.redis,
            prefix + request.path_params["key"],
            last_event_id=last_event_id,
            writer_timeout=writer_timeout,
            keepalive=keepalive,
            reconnect_ms=reconnect_ms,
        )
        # no-cache: a resumed stream must come from the relay; X-Accel-Buffering: nginx passes each event at once
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    return Starlette(routes=[Route("/", page), Route("/streams/{key:path}", events)], lifespan=lifespan)
