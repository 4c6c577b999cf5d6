"""A websockets client connection that pushes each message to its observer as it arrives."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from reactivex import abc
from websockets.asyncio.client import ClientConnection
from websockets.frames import DATA_OPCODES, Frame
from websockets.protocol import Event, State

from ..core._demand import (
    Demand,
    batch_receiver,
)
from ..core._redaction import Secrets
from ..protocol._decision import ABNORMAL_CLOSURE, MESSAGE_TOO_BIG, NORMAL_CLOSURE, Ending
from ..protocol._framing import FrameReader
from ._recovery import Timers

CLOSE_TIMEOUT = 10.0  # the protocol: the server closes within 10 s after the final chunk


class PushConnection(ClientConnection):
    """A websockets client connection that hands each message to a sink as its bytes arrive.

    websockets' own receive path parses every frame in Python generators and queues it for
    ``recv()``: a queue, a future and a task switch per frame. Here the handshake goes to
    websockets, cut at the end of the HTTP response, and every byte after it to a
    ``FrameReader``, which pushes whole messages straight downstream and gives websockets'
    protocol every other frame. Flow control is exact: while the demand below is not ready,
    or before anyone is attached, the transport stops reading, so the TCP window closes and
    the peer's sends block; frames already read wait in a backlog no larger than one read.
    Once detached, the connection only reads to see the closing handshake through, and drops
    every message: a peer that floods after the end costs no memory.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.take: Callable[[Iterator[bytes]], bool] | None = None  # the observer's, while attached
        self.demand: Demand | None = None
        self.backlog: deque[bytes] = deque()
        self.fragments: list[bytes] = []
        self.reading = True
        self.detached = False  # for good: the stream is over for this connection
        self.reader: FrameReader | None = None  # from the end of the handshake on
        self.head_end = b""  # the last bytes of the handshake read so far, for a terminator split across reads
        self.lost = False
        self.done: asyncio.Future[None] | None = None
        self.timers: Timers | None = None  # told of every read (pings included) and of each message

    def attach(
        self,
        observer: abc.ObserverBase[bytes],
        demand: Demand | None,
        done: asyncio.Future[None],
        timers: Timers | None = None,
    ) -> None:
        """Push messages to ``observer`` while ``demand`` is ready, telling ``timers`` of every read
        and of messages as they arrive; resolve ``done`` once the connection has ended and every
        message it read is handed on."""
        self.take = batch_receiver(observer)
        self.demand = demand
        self.done = done
        self.timers = timers
        self.flush()

    def detach(self) -> None:
        """Take no more messages, and read again so that the closing handshake gets through."""
        self.take = None
        self.timers = None
        self.detached = True
        self.backlog.clear()
        self.fragments.clear()
        self.set_reading(True)

    def data_received(self, data: bytes) -> None:
        if self.timers is not None:
            self.timers.alive()
        if self.reader is not None:
            self.reader.feed(data)
        elif self.protocol.state is State.CONNECTING:
            self.handshake_received(data)
        else:
            super().data_received(data)
            self.check_ended()

    def handshake_received(self, data: bytes) -> None:
        """Give websockets the HTTP response and nothing after it: the frames that follow reach
        the ``FrameReader`` from their first byte. (A 101 response has no body.)"""
        seen = self.head_end + data
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self.head_end = seen[-3:]
            super().data_received(data)
            return
        cut = end + 4 - len(self.head_end)
        super().data_received(data[:cut])
        if self.protocol.state is State.OPEN:
            limits = [
                size for size in (self.protocol.max_message_size, self.protocol.max_fragment_size) if size is not None
            ]
            self.reader = FrameReader(self.deliver, self.to_protocol, min(limits, default=None))
            self.reader.feed(data[cut:])
        elif cut < len(data):
            super().data_received(data[cut:])

    def to_protocol(self, data: bytes) -> bool:
        """Let websockets' protocol read ``data`` (frames that are not whole messages, or all that
        follows one it will refuse); whether the connection is still open."""
        super().data_received(data)
        self.check_ended()
        return self.protocol.state is State.OPEN

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.reader = None  # it holds this connection's methods: a cycle the collector would have to find
        self.lost = True
        self.check_ended()

    def check_ended(self) -> None:
        """Resolve ``done`` once the stream can bring nothing more: the connection is closing
        (a close frame either way) or lost, and the backlog is handed on. Not waiting for the
        closing handshake is what reports a failure at once, whatever the peer does next."""
        done = self.done
        if (
            done is not None
            and not done.done()
            and not self.backlog
            and (self.lost or self.protocol.state is not State.OPEN)
        ):
            done.set_result(None)

    def eof_received(self) -> None:
        if self.reader is not None:
            self.reader.stop()  # websockets sees a frame cut short as such
        return super().eof_received()

    def process_event(self, event: Event) -> None:
        if not isinstance(event, Frame) or event.opcode not in DATA_OPCODES:
            super().process_event(event)  # the handshake, pings, pongs and close
            return
        if self.detached:
            return
        data = event.data if type(event.data) is bytes else bytes(event.data)
        if not event.fin or self.fragments:
            self.fragments.append(data)
            if not event.fin:
                return
            data = b"".join(self.fragments)
            self.fragments.clear()
        self.deliver([data])

    def deliver(self, messages: list[bytes]) -> None:
        """Messages, in order: downstream while the demand below is ready, the rest to the backlog."""
        if self.detached:
            return
        if self.timers is not None:
            self.timers.content_came()
        demand = self.demand
        if self.backlog or self.take is None or (demand is not None and not demand.ready):
            self.backlog.extend(messages)
            self.hold_back()
            return
        self.push(iter(messages))

    def push(self, messages: Iterator[bytes]) -> None:
        """Give the observer ``messages`` while the demand is ready; keep the rest in the backlog."""
        demand = self.demand
        while True:
            take = self.take
            if take is None:  # detached on the way: disposed, or the stream is requested again
                return
            if not take(messages):
                break
            if demand is not None and not demand.ready:
                self.backlog.extend(messages)
                break
        if demand is not None and not demand.ready:
            self.hold_back()

    def hold_back(self) -> None:
        if self.reading:
            self.set_reading(False)
            if self.take is not None and self.demand is not None:
                self.demand.when_ready(self.flush)

    def flush(self) -> None:
        if self.timers is not None:
            self.timers.consumer_ready()  # the time the consumer took is not the peer's silence
            if self.backlog:
                self.timers.content_came()  # messages read before anyone was attached are content too
        backlog, self.backlog = self.backlog, deque()
        self.push(iter(backlog))
        if self.take is None:
            return
        if self.demand is None or self.demand.ready:
            self.set_reading(True)
            self.check_ended()
        else:
            self.reading = True  # so that hold_back registers again
            self.hold_back()

    def set_reading(self, reading: bool) -> None:
        if reading != self.reading and not self.transport.is_closing():
            (self.transport.resume_reading if reading else self.transport.pause_reading)()
        self.reading = reading

    def ending(self, awaited: bool, secrets: Secrets) -> Ending:
        """How the connection ended, for ``decide``; ``awaited``: a reorder stage waits for more.
        The peer's close reason is quoted through ``secrets``."""
        protocol = self.protocol
        received, sent = protocol.close_rcvd, protocol.close_sent
        if sent is not None and sent.code == MESSAGE_TOO_BIG and received is None:
            return Ending(too_large=protocol.max_message_size)
        code = received.code if received is not None else ABNORMAL_CLOSURE
        if not awaited:
            return Ending(finished=code in (NORMAL_CLOSURE, 1001))
        reason = secrets.peer_text(received.reason) if received is not None else ""
        return Ending(close_code=code, reason=reason, cut_short=code == NORMAL_CLOSURE)


_closing: set[asyncio.Task[None]] = set()  # polite closes under way, kept from the garbage collector


def close_later(connection: PushConnection) -> None:
    """Close politely in the background (bounded by ``CLOSE_TIMEOUT``): an error is reported, or
    the next connection opened, without waiting for a peer that may never answer the close."""
    connection.detach()
    task = asyncio.get_running_loop().create_task(close_or_abort(connection))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def close_or_abort(connection: PushConnection) -> None:
    """The closing handshake; cut short (the program ending right after an error cancels it),
    the socket is aborted, not left open for the collector to warn about."""
    try:
        await connection.close()
    except asyncio.CancelledError:
        connection.transport.abort()
        raise
