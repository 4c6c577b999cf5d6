"""What ``publish`` needs from a stream others read (the interface ``RedisStreamSink`` implements),
and what a reader of such a stream gets: each entry's id with its chunk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from ._values import Chunk

Fields = dict[str, str]


class StreamSink(Protocol):
    """An append-only stream of entries, each a dict of strings; implement it to publish elsewhere.

    ``name`` names the stream in errors. ``append`` appends ``entries`` in order (in one round
    trip, where the store allows) and returns once they are stored; ``terminal`` says the last
    of them ends the stream, so that the sink can let it expire.
    """

    name: str

    async def append(self, entries: Sequence[Fields], *, terminal: bool) -> None: ...


class StreamEntry(NamedTuple):
    """One entry a stream's reader got: its ``id`` in the stream (resume after it) and its ``chunk``,
    numbered by its place in the stream (``chunk.index``); the last entry's chunk ``is_final``."""

    id: str
    chunk: Chunk
