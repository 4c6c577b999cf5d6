"""Streams that outlive the worker, on Redis Streams: the sink ``publish`` appends to, and the source that
reads it back from any entry id.

redis-py (the ``rxstream[redis]`` extra) is imported with this module, which ``rxstream`` loads on
first use of one of its names.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core._demand import Demand, Resume, Source, current_demand, current_resume, current_secrets, current_stats
from ..core._errors import InvalidChunkError, WriterFailedError, WriterLostError
from ..core._redaction import Secrets
from ..core._stream_sink import Fields, StreamEntry
from ..core._values import Stats
from ..protocol._decision import Ending, Retry, RetryPolicy
from ..protocol._stream_entries import RecordedFailure, read_entry
from ._clock import Clock, SystemClock
from ._recovery import RateLimiter, Reconnector, SourceOptions
from ._sources import until_ready

ENTRY_ID = re.compile(r"\d+(-\d+)?")
BLOCK_AT_MOST = 5.0  # seconds an XREAD blocks at most: a client with a socket_timeout above it keeps its connection


class StreamGoneError(Exception):
    """The stream vanished under its writer: Redis restarted without it, or it was deleted or expired."""


class RedisStreamSink:
    """A Redis Stream that ``rxstream.operators.publish`` appends to: one stream per response.

    Each batch is one pipelined round trip of ``XADD key MAXLEN ~ maxlen``. Every append after
    the stream's first is ``NOMKSTREAM``, so that a Redis restarted without the stream makes the
    append fail (readers would otherwise see a gap) instead of starting a new stream. With the
    terminal entry the stream is given ``ttl`` seconds to live (``EXPIRE``), so finished answers
    stay resumable that long and then go.

    Args:
        redis: A ``redis.asyncio.Redis`` client (``redis.asyncio.from_url(url)``).
        key: The stream's key: one per response, not reused (readers read it from its start).
        maxlen: About how many entries the stream keeps (``MAXLEN ~``): memory in Redis stays
            bounded, and a reader more than this far behind the writer fails with
            ``InvalidChunkError`` rather than miss entries silently.
        ttl: Seconds the stream lives after its terminal entry; None keeps it.
    """

    def __init__(self, redis: Redis, key: str, *, maxlen: int = 100_000, ttl: float | None = 3600.0) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self.redis = redis
        self.key = key
        self.name = f"redis stream {key!r}"
        self.maxlen = maxlen
        self.ttl = ttl
        self.started = False

    async def append(self, entries: Sequence[Fields], *, terminal: bool) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for number, fields in enumerate(entries):
            pipe.xadd(
                self.key,
                dict(fields),  # type: ignore[arg-type]  # redis-py's Dict is invariant in its keys
                maxlen=self.maxlen,
                approximate=True,
                nomkstream=self.started or number > 0,
            )
        if terminal and self.ttl is not None:
            pipe.expire(self.key, math.ceil(self.ttl))
        async with pipe:
            ids = await pipe.execute()
        self.started = True
        if any(entry_id is None for entry_id in ids[: len(entries)]):
            raise StreamGoneError(
                f"{self.key!r} is gone from Redis (a restart without persistence, a DEL or an expiry): "
                "appending would leave its readers a gap"
            )


class RedisStreamReader(Reconnector[StreamEntry]):
    """One subscription of ``from_redis_stream``: ``XREAD BLOCK`` while demand is ready, from the last id read."""

    def __init__(
        self,
        observer: abc.ObserverBase[StreamEntry],
        redis: Redis,
        key: str,
        after: str,
        writer_timeout: float,
        count: int,
        options: SourceOptions,
        demand: Demand | None,
        stats: Stats,
        resume: Resume,
        secrets: Secrets,
    ) -> None:
        super().__init__(observer, "redis://", options, demand, stats, resume, secrets)
        self.endpoint = f"redis stream {key!r}"
        self.redis = redis
        self.key = key
        self.last_id = after
        self.writer_timeout = writer_timeout
        self.count = count
        self.next_number: int | None = 0 if after == "0" else None  # unknown when resuming mid-stream
        self.delivered = 0
        self.attempt_delivered = 0

    def begin_attempt(self) -> int:
        self.attempt_delivered = self.delivered
        return 0

    def progressed(self) -> bool:
        return self.delivered > self.attempt_delivered

    async def stream(self) -> None:
        while True:
            self.begin_attempt()
            try:
                ending = Ending(finished=await self.read())
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                ending = Ending(network=f"{type(error).__name__}: {error}")
            if self.disposed or not await self.follow(ending):
                return

    async def read(self) -> bool:
        """Read and push entries until the terminal one; True then, False once disposed."""
        if self.next_number is None and await self.ended_at_last_id():
            return True
        clock = self.options.clock
        heard_at = clock.monotonic()
        while not self.disposed:
            if self.demand is not None and not self.demand.ready:
                await until_ready(self.demand)
                heard_at = clock.monotonic()  # the consumer's time is not the writer's
            wait = self.writer_timeout - (clock.monotonic() - heard_at)
            if wait <= 0:
                raise WriterLostError(self.endpoint, self.writer_timeout, self.last_id)
            reply = await self.redis.xread(
                {self.key: self.last_id}, count=self.count, block=max(1, int(min(wait, BLOCK_AT_MOST) * 1000))
            )
            entries = entries_of(reply)
            if entries:
                heard_at = clock.monotonic()
            for entry_id, fields in entries:
                if self.push(entry_id, fields):
                    return True
                if self.disposed:
                    return False
                if self.demand is not None and not self.demand.ready:
                    await until_ready(self.demand)
                    heard_at = clock.monotonic()
        return False

    def push(self, entry_id: str, fields: Mapping[str, str]) -> bool:
        """Push one entry downstream; True when it ended the stream. Raises what a failed writer recorded."""
        item = read_entry(fields)
        number = item.number if isinstance(item, RecordedFailure) else item.index
        if self.next_number is not None and number != self.next_number:
            raise InvalidChunkError(
                self.next_number,
                number,
                f"entries of {self.endpoint} were trimmed (MAXLEN) before this reader read them",
            )
        self.next_number = number + 1
        if isinstance(item, RecordedFailure):
            raise WriterFailedError(self.endpoint, item.error_type, item.detail, item.characters)
        self.last_id = entry_id
        self.delivered += 1
        self.emit(StreamEntry(entry_id, item))
        return item.is_final

    async def ended_at_last_id(self) -> bool:
        """Whether the entry resumed after is the stream's terminal one: nothing more will come."""
        last = entries_of([[self.key, await self.redis.xrevrange(self.key, count=1)]])
        if not last:
            return False
        entry_id, fields = last[0]
        return entry_id == self.last_id and fields.get("end") == "done"


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def entries_of(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The entries of an XREAD reply (RESP2's list of [key, entries] or RESP3's map), as text, whichever
    ``decode_responses`` the client has."""
    streams = reply.items() if isinstance(reply, dict) else (reply or [])
    return [
        (text(entry_id), {text(name): text(value) for name, value in fields.items()})
        for _, entries in streams
        for entry_id, fields in (entries[0] if entries and isinstance(entries[0], list) else entries)
    ]


def from_redis_stream(
    redis: Redis,
    key: str,
    *,
    after: str = "0",
    writer_timeout: float = 30.0,
    count: int = 256,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: Callable[[Retry], object] | None = None,
    clock: Clock | None = None,
) -> Observable[StreamEntry]:
    """An Observable of the entries ``publish`` appended to the Redis Stream ``key``, from any point, each once.

    Each entry comes as a ``StreamEntry``: its id (to resume after) and its chunk, numbered by
    its place in the stream. Entries are read with ``XREAD BLOCK`` while the demand below is
    ready (up to ``count`` a round trip), so a slow consumer slows the reads, not the writer.
    The stream completes after the final delta's entry, and fails with ``WriterFailedError``
    at a terminal entry that records the writer's error. A reader started before the writer,
    during or after it gets the same entries in the same order; ``after`` the id of an entry
    gives exactly those after it (a browser's ``Last-Event-ID``, see ``relay_sse``).

    ``writer_timeout`` is how a reader learns that the writer died: no new entry and no
    terminal entry for that long (while the consumer is ready) fails the stream with
    ``WriterLostError``, after every entry published was delivered; it is never a hang. A lost
    connection to Redis is retried per ``retry`` (resuming after the last id), as the network
    sources do.

    For the text: ``from_redis_stream(redis, key).pipe(ops.map(lambda entry: entry.chunk),
    rxo.accumulate(), rxo.finalize())`` gives the writer's ``Response``.

    Args:
        redis: A ``redis.asyncio.Redis`` client.
        key: The stream's key, as given to ``RedisStreamSink``.
        after: The id of the last entry already had; ``"0"`` (default) reads from the start.
        writer_timeout: Seconds without a new entry before the writer is taken for dead.
        count: The most entries one ``XREAD`` returns.
        retry: Retries of a lost connection to Redis (consecutive, without progress).
        on_retry: Called with each ``Retry`` before its wait.
        clock: Where the retries' waits and the writer timeout are measured.

    Returns:
        An Observable of ``StreamEntry``.

    Raises:
        ValueError: (at the call) ``after`` is not an entry id, or ``writer_timeout`` or
            ``count`` is not positive.
        WriterFailedError: (to the observer) the writer recorded an error: its class name,
            message and the partial text's length are on the error.
        WriterLostError: (to the observer) no entry for ``writer_timeout`` seconds.
        InvalidChunkError: (to the observer) entries were trimmed (``MAXLEN``) before this reader
            got to them.
        ConnectionLostError: (to the observer) Redis could not be reached within ``retry``.
        FrameError: (to the observer) an entry ``publish`` did not write.
    """
    if not ENTRY_ID.fullmatch(after):
        raise ValueError(f"after must be a Redis Stream entry id such as 1700000000000-0 (or 0), not {after!r:.60}")
    if writer_timeout <= 0 or count < 1:
        raise ValueError("writer_timeout must be positive and count at least 1")
    clock_ = clock or SystemClock()
    options = SourceOptions(
        token=None,
        headers=None,
        stream_timeout=writer_timeout,
        content_timeout=None,  # the writer timeout is the reader's own, measured between entries
        deadline=None,
        retry=retry,
        on_retry=on_retry,
        clock=clock_,
        limiter=RateLimiter(1000.0, clock_),
    )

    def subscribe(
        observer: abc.ObserverBase[StreamEntry], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        reader = RedisStreamReader(
            observer,
            redis,
            key,
            after,
            writer_timeout,
            count,
            options,
            current_demand(),
            current_stats(),
            current_resume(),
            current_secrets(),
        )
        reader.start(asyncio.get_running_loop())
        return Disposable(reader.dispose)

    return Source(subscribe)
