"""The five operators fused: frames (or SSE events) in, one ``Response`` out."""

from __future__ import annotations

import time
from typing import Any

from reactivex import abc

from ..core._stage import Operator, fuse
from ..core._values import Response
from ..protocol._sse import SSEEvent
from ._accumulate import accumulate
from ._backpressure_buffer import Overflow, backpressure_buffer
from ._fast_path import FastPath
from ._finalize import Timer, finalize
from ._fragment_path import FragmentPath
from ._parse import Payload, parse
from ._parse_sse import parse_sse
from ._reorder import reorder


def pipeline(
    window: int = 64,
    max_pending: int = 5,
    overflow: Overflow = "block",
    timer: Timer = time.perf_counter,
) -> Operator[Payload, Response]:
    """parse → reorder → backpressure_buffer → accumulate → finalize, fused into one operator.

    The same stages as piping the five operators one by one, run inside one subscription,
    with an fast path for the common chunk.
    """
    stages = fuse(
        parse(),
        reorder(window),
        backpressure_buffer(max_pending, overflow),
        accumulate(),
        finalize(timer),
    )
    return _WithFastPath(*stages.factories)


def sse_pipeline(
    window: int = 64,
    max_pending: int = 5,
    choice: int = 0,
    timer: Timer = time.perf_counter,
) -> Operator[SSEEvent, Response]:
    """parse_sse → reorder → backpressure_buffer → accumulate → finalize, fused: SSE events in, one Response out."""
    stages = fuse(
        parse_sse(choice),
        reorder(window),
        backpressure_buffer(max_pending),
        accumulate(),
        finalize(timer),
    )
    return _WithFragmentPath(*stages.factories)


class _WithFastPath(Operator[Payload, Response]):
    """The fused five, with parse handing plain in-order chunks to an ``FastPath``."""

    def head(self, stages: list[Any]) -> abc.ObserverBase[Payload]:
        return FastPath(*stages)


class _WithFragmentPath(Operator[SSEEvent, Response]):
    """The fused five, with parse_sse handing lone argument fragments to a ``FragmentPath``."""

    def head(self, stages: list[Any]) -> abc.ObserverBase[SSEEvent]:
        parse = stages[0]
        parse.fragment_path = FragmentPath(*stages[1:])
        return parse  # type: ignore[no-any-return]
