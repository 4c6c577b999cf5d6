"""backpressure_buffer: a bounded queue between a fast producer and a slower consumer."""

from __future__ import annotations

from collections import deque
from typing import Literal, TypeVar

from reactivex import abc

from ..core._demand import Demand
from ..core._errors import BufferOverflowError
from ..core._stage import Operator, Shared, Stage
from ..core._values import Chunk

Overflow = Literal["block", "drop_oldest", "drop_newest", "error"]
OVERFLOW_STRATEGIES: tuple[Overflow, ...] = ("block", "drop_oldest", "drop_newest", "error")
_T = TypeVar("_T")


class BufferStage(Stage[_T, _T]):
    def __init__(self, downstream: abc.ObserverBase[_T], shared: Shared, max_pending: int, overflow: Overflow) -> None:
        super().__init__(downstream, shared)
        self.max_pending = max_pending
        self.overflow = overflow
        self.consumer = shared.demand  # the demand from below; None means a consumer that takes all at once
        self.producer = Demand()  # the demand this buffer publishes to the stages above
        self.queue: deque[_T] = deque()
        self.ended: tuple[Exception | None] | None = None  # upstream's terminal event, held behind the queue

    @property
    def upstream_demand(self) -> Demand:
        return self.producer

    def on_next(self, item: _T) -> None:
        consumer = self.consumer
        queue = self.queue
        if not queue and (consumer is None or consumer.ready):
            self.emit(item)
            return
        if self.stopped or self.ended is not None:
            return
        if len(queue) >= self.max_pending:
            if self.overflow == "drop_newest":
                self.shared.stats.dropped += 1
                return
            if self.overflow == "drop_oldest":
                queue.popleft()
                self.shared.stats.dropped += 1
            elif self.overflow == "error":
                index = item.index if isinstance(item, Chunk) else -1
                self.shared.cancel_upstream()
                self.end_after_queue(BufferOverflowError(self.max_pending, index))
                return
        queue.append(item)
        stats = self.shared.stats
        if len(queue) > stats.buffer_high_water:
            stats.buffer_high_water = len(queue)
        if self.overflow == "block" and len(queue) >= self.max_pending:
            self.producer.pause()
        if len(queue) == 1 and consumer is not None:
            consumer.when_ready(self.drain)

    def drain(self) -> None:
        consumer = self.consumer
        queue = self.queue
        while queue and (consumer is None or consumer.ready) and not self.stopped:
            self.emit(queue.popleft())
        if queue:
            if consumer is not None:
                consumer.when_ready(self.drain)
        elif self.ended is not None:
            self.end(self.ended[0])
        if len(queue) < self.max_pending:
            self.producer.resume()

    def on_error(self, error: Exception) -> None:
        self.end_after_queue(error)

    def on_completed(self) -> None:
        self.end_after_queue(None)

    def end_after_queue(self, error: Exception | None) -> None:
        """Deliver every queued chunk before the terminal event: nothing received is lost."""
        if self.queue:
            self.ended = (error,)
        else:
            self.end(error)

    def end(self, error: Exception | None) -> None:
        if error is None:
            self.complete()
        else:
            self.fail(error)


def backpressure_buffer(max_pending: int = 5, overflow: Overflow = "block") -> Operator[Chunk, Chunk]:
    """Hold at most ``max_pending`` items a slower consumer has not taken yet.

    .. marble::
        :alt: backpressure_buffer

        -a-b-c-------d-|
        [ backpressure_buffer(max_pending=2) ]
        -a-------(bc)d-|

        -a-b-c-d-
        [ backpressure_buffer(max_pending=2, overflow="error") ]
        -a-------(bc#)

    The consumer below takes ``a``, is busy until ``(bc)``, then keeps up. In the first
    diagram ``b`` and ``c`` fill the queue, so demand stops the source, which reads ``d``
    only once there is room. In the second ``d`` overflows: the source is stopped and the
    stream fails with ``BufferOverflowError`` after the queued items.

    While the consumer below is ready (``rxstream.to_async_iterable`` says so, one item at
    a time) items pass straight through. When ``max_pending`` are waiting, ``overflow``
    decides:

    - ``"block"`` (default): demand goes upstream, so the source stops reading (a socket
      source stops reading the socket) until there is room; nothing is dropped. Chunks
      the reorder stage releases in one burst are still taken, so the queue is bounded
      by ``max_pending`` plus the reorder window.
    - ``"drop_oldest"``: evict the oldest waiting item to make room.
    - ``"drop_newest"``: discard the incoming item and keep the queue as it is. This is
      not RxJava's ``DROP_LATEST``, which evicts the newest *queued* item to make room
      for the incoming one.
    - ``"error"``: stop the source and fail with ``BufferOverflowError``, after the
      queued items.

    Drops are counted in ``Stats.dropped`` and make the response incomplete. A completion
    or error from upstream waits behind the queued items.

    Args:
        max_pending: The most items waiting for the consumer.
        overflow: What to do with an item that arrives when ``max_pending`` are waiting.

    Returns:
        An operator that takes an observable and returns one of the same items (fewer
        only with a dropping ``overflow``), each as soon as the consumer is ready for it.

    Raises:
        ValueError: (at the call) ``max_pending`` is below 1, or ``overflow`` is not one of
            the four strategies.
        BufferOverflowError: (to the observer, after the queued items) with ``overflow="error"``, an
            item arrived when ``max_pending`` were waiting: its ``index`` (-1 for one that is no ``Chunk``).
    """
    if max_pending < 1:
        raise ValueError("max_pending must be at least 1")
    if overflow not in OVERFLOW_STRATEGIES:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_STRATEGIES)}, not {overflow!r}")
    return Operator(lambda downstream, shared: BufferStage(downstream, shared, max_pending, overflow))
