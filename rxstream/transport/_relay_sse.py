"""A published stream relayed to browsers: its entries as Server-Sent Events whose ids are the entry ids,
so that an ``EventSource`` resumes with ``Last-Event-ID`` on any worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis.asyncio import Redis

from ..core._errors import StreamError, WriterFailedError
from ..core._stream_sink import StreamEntry
from ..core._values import Chunk
from ..protocol._sse import SSEEncoder
from ..protocol._stream_entries import delta_fields
from ._redis import from_redis_stream
from ._sources import to_async_iterable


def entry_payload(chunk: Chunk) -> bytes:
    """An entry as the relay sends it to a browser: its fields as a JSON object (``text``, ``reasoning``, ...)."""
    fields: dict[str, Any] = delta_fields(chunk.index, chunk.data, chunk)
    for name in ("usage", "tool_calls"):
        if name in fields:
            fields[name] = orjson.loads(fields[name])
    fields["n"] = chunk.index
    return orjson.dumps(fields)


async def relay_sse(
    redis: Redis,
    key: str,
    *,
    last_event_id: str | None = None,
    writer_timeout: float = 30.0,
    keepalive: float = 15.0,
    reconnect_ms: int = 1000,
) -> AsyncIterator[bytes]:
    """The stream ``key`` as ``text/event-stream`` bytes, each entry an event whose ``id`` is its entry id.

    A browser's ``EventSource`` that loses the connection reconnects with ``Last-Event-ID``: pass
    that header as ``last_event_id`` and the events resume exactly after it, on any worker,
    since the stream is in Redis. Each delta is a ``message`` event whose data is a JSON object
    (``n``, its place in the stream, ``text``, and ``reasoning``, ``refusal``, ``tool_calls`` ...
    where the delta has them); the final delta's is a ``done`` event; a stream that
    failed ends with a ``failed`` event (``error_type``, ``message``). Close the ``EventSource``
    on either, or it reconnects. A comment goes out after ``keepalive`` seconds without an
    event, so that proxies keep the connection open. Closing the iterator (the browser left)
    stops the reads.

    Args:
        redis: A ``redis.asyncio.Redis`` client.
        key: The stream's key.
        last_event_id: The ``Last-Event-ID`` request header, if any.
        writer_timeout: ``from_redis_stream``'s: when to give up on a writer that stopped.
        keepalive: Seconds without an event before a comment is sent.
        reconnect_ms: The reconnection time sent to the browser (the ``retry`` field).

    Raises:
        ValueError: (at the first iteration) ``last_event_id`` is not an entry id.
    """
    encoder = SSEEncoder()
    entries = to_async_iterable(
        from_redis_stream(redis, key, after=last_event_id or "0", writer_timeout=writer_timeout)
    )
    yield encoder.retry(reconnect_ms)
    next_entry: asyncio.Task[StreamEntry] | None = None
    try:
        while True:
            if next_entry is None:
                next_entry = asyncio.ensure_future(anext(entries))
            done, _ = await asyncio.wait({next_entry}, timeout=keepalive)
            if not done:
                yield encoder.comment("keep-alive")
                continue
            try:
                entry = next_entry.result()
            except StopAsyncIteration:
                return
            except StreamError as error:
                recorded = error.error_type if isinstance(error, WriterFailedError) else type(error).__name__
                failure = {"error_type": recorded, "message": str(error)}
                yield encoder.encode(orjson.dumps(failure).decode(), event="failed")
                return
            next_entry = None
            event = "done" if entry.chunk.is_final else "message"
            yield encoder.encode(entry_payload(entry.chunk).decode(), event=event, id=entry.id)
    finally:
        if next_entry is not None:
            next_entry.cancel()
        await entries.aclose()
