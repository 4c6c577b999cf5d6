"""publish: append each delta to a stream that other processes read (a Redis Stream), then pass it on."""

from __future__ import annotations

import asyncio
from functools import partial

from reactivex import abc

from ..core._demand import Demand
from ..core._errors import PublishFailedError
from ..core._stage import Operator, Shared, Stage
from ..core._stream_sink import Fields, StreamSink
from ..core._transcript import Transcript
from ..protocol._stream_entries import delta_fields, done_fields, failure_fields
from ._accumulate import Delta
from ._persist import running_loop


class PublishStage(Stage[Delta, Delta]):
    """Appends what it is pushed in batches, one append at a time, and passes each delta on once it is stored.

    Deltas that come while an append is under way wait for the next one, which takes them all
    (up to ``max_batch``): one round trip per batch when the sink is slower than the deltas.
    When ``max_batch`` are waiting, the demand it publishes upstream pauses, so a buffer above
    holds and the source stops reading its socket, instead of this stage queueing without bound.
    """

    def __init__(
        self,
        downstream: abc.ObserverBase[Delta],
        shared: Shared,
        sink: StreamSink,
        max_batch: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(downstream, shared)
        self.sink = sink
        self.max_batch = max_batch
        self.loop = loop
        self.consumer = shared.demand  # the demand from below; None: a consumer that takes all at once
        self.producer = Demand()  # the demand this stage publishes to the stages above
        self.waiting: list[Delta] = []
        self.published = 0  # entries stored: the next entry's number
        self.transcript: Transcript | None = None
        self.final_taken = False  # the final delta came: what follows it is not published
        self.ended: tuple[Exception | None] | None = None  # upstream's terminal event, held behind the appends
        self.task: asyncio.Task[None] | None = None

    @property
    def upstream_demand(self) -> Demand:
        return self.producer

    def on_next(self, delta: Delta) -> None:
        if self.stopped or self.final_taken or self.ended is not None:
            return
        self.transcript = delta.transcript
        self.final_taken = delta.chunk.is_final
        self.waiting.append(delta)
        if len(self.waiting) >= self.max_batch:
            self.producer.pause()
        self.start_appending()

    def on_error(self, error: Exception) -> None:
        if not self.stopped and self.ended is None:
            self.ended = (error,)
            self.start_appending()

    def on_completed(self) -> None:
        if not self.stopped and self.ended is None:
            self.ended = (None,)
            self.start_appending()

    def start_appending(self) -> None:
        if self.task is None:
            self.task = self.loop.create_task(self.append_all())

    async def append_all(self) -> None:
        """Append what waits, batch after batch, then pass on upstream's end (with its terminal entry)."""
        try:
            while not self.stopped:
                batch, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch :]
                ended = None if self.waiting else self.ended
                if not batch and ended is None:
                    return
                self.producer.resume()  # room again: the next deltas gather while this batch is appended
                entries, terminal = self.entries_of(batch, ended)
                if entries and not await self.appended(entries, terminal, batch):
                    return
                for delta in batch:
                    await self.until_consumer_ready()
                    if self.stopped:
                        return
                    self.emit(delta)
                if ended is not None:
                    self.stopped = True
                    if ended[0] is None:
                        self.downstream.on_completed()
                    else:
                        self.downstream.on_error(ended[0])
                    return
        finally:
            self.task = None

    def entries_of(self, batch: list[Delta], ended: tuple[Exception | None] | None) -> tuple[list[Fields], bool]:
        """The entries for ``batch``, numbered on from those stored, and whether they end the stream."""
        number = self.published
        entries = [delta_fields(number + i, delta.text, delta.chunk) for i, delta in enumerate(batch)]
        characters = 0 if self.transcript is None else len(self.transcript)
        if batch and batch[-1].chunk.is_final:
            entries[-1] = done_fields(entries[-1], characters)
            return entries, True
        if ended is None or self.final_taken:
            return entries, False
        error = ended[0]
        if error is None:
            failure = failure_fields(
                number + len(batch), "IncompleteStreamError", "the stream ended before its final chunk", characters
            )
        else:
            failure = failure_fields(number + len(batch), type(error).__name__, str(error), characters)
        return [*entries, failure], True

    async def appended(self, entries: list[Fields], terminal: bool, batch: list[Delta]) -> bool:
        """Append ``entries``; on failure end the stream with ``PublishFailedError`` and stop the source."""
        try:
            await self.sink.append(entries, terminal=terminal)
        except Exception as failure:  # a sink of the user's own may raise anything
            error = PublishFailedError(
                self.sink.name, self.published, len(batch) + len(self.waiting), f"{type(failure).__name__}: {failure}"
            )
            error.__cause__ = failure
            self.fail(error)
            return False
        self.published += len(entries)
        return True

    async def until_consumer_ready(self) -> None:
        consumer = self.consumer
        while consumer is not None and not consumer.ready and not self.stopped:
            ready: asyncio.Future[None] = self.loop.create_future()
            consumer.when_ready(partial(settle, ready))
            await ready


def settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def publish(sink: StreamSink, *, max_batch: int = 256) -> Operator[Delta, Delta]:
    """Append each delta to ``sink`` (a ``rxstream.RedisStreamSink``), then pass it on unchanged.

    .. marble::
        :alt: publish

        -a-b-c-f-|
        [ publish(sink) ]
        ---a---(bc)-f-|

        -a-b-#
        [ publish(sink) ]
        ---a---b-#

    ``a``, ``b``, ``c`` are deltas (after ``accumulate``), ``f`` the final chunk's. Each goes
    on once it is stored: ``b`` and ``c`` came while ``a`` was being appended, so they went in
    one batch, in one round trip. ``f``'s entry is also the stream's terminal entry (with the
    text's length), after which the sink lets the stream expire. In the second diagram upstream
    failed: a terminal entry recording the error's class, message and the partial text's length
    is appended, then the error passed on. A completion without the final chunk is recorded as
    ``IncompleteStreamError``. Readers (``rxstream.from_redis_stream``) thus end as the writer
    did, with every delta, each once. Disposed before its end (the consumer left), it appends no
    terminal entry: readers end with ``WriterLostError`` after their ``writer_timeout``.

    Memory stays bounded when the sink is slow: it holds at most two batches (one being appended,
    one gathering), for once ``max_batch`` deltas wait, the demand this operator publishes upstream
    pauses, so ``backpressure_buffer`` above holds and the source
    stops reading its socket; the provider is slowed rather than queued for. Downstream's
    demand is honoured as well.

    Place it between ``accumulate`` and ``finalize`` (the fused ``rxstream.pipeline`` ends in a
    ``Response``, so pipe the five operators one by one). Subscribe inside a running asyncio
    loop: the appends run on it.

    Args:
        sink: A ``StreamSink``: ``rxstream.RedisStreamSink(redis, key)`` or a store of your own.
        max_batch: The most entries appended in one round trip, and the most deltas waiting
            before demand pauses upstream.

    Returns:
        An operator that takes an observable of ``Delta``s and returns one of the same deltas,
        each once stored; completion and errors follow, once recorded.

    Raises:
        ValueError: (at the call) ``max_batch`` is below 1.
        RuntimeError: (at subscription) no asyncio event loop is running.
        PublishFailedError: (to the observer, ending the stream) an append failed; it says how
            many entries were stored, and the sink's error is the ``__cause__``.
    """
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")

    def stage(downstream: abc.ObserverBase[Delta], shared: Shared) -> PublishStage:
        loop = running_loop()
        if loop is None:
            raise RuntimeError(
                "publish appends on an asyncio event loop: subscribe inside one, e.g. by awaiting the pipeline"
            )
        return PublishStage(downstream, shared, sink, max_batch, loop)

    return Operator(stage)
