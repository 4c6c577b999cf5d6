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
from ._parse_responses import parse_responses
from ._parse_sse import parse_sse
from ._reorder import reorder


def pipeline(
    window: int = 64,
    max_pending: int = 5,
    overflow: Overflow = "block",
    timer: Timer = time.perf_counter,
) -> Operator[Payload, Response]:
    """parse → reorder → backpressure_buffer → accumulate → finalize, fused into one operator.

    .. marble::
        :alt: pipeline

        -1--0--0--2--|
        [  pipeline()  ]
        ----------(R|)

        -0--2--|
        [ pipeline() ]
        -------#

    The digits are frames with those chunk indices, ``2`` the final chunk; ``R`` is the
    ``Response`` (its text chunk 0's, 1's and 2's, ``Stats.duplicates == 1``). In the
    second diagram chunk 1 never comes: reorder's ``InvalidChunkError``, its ``partial``
    holding chunk 0.

    The same stages as piping the five operators one by one, run inside one subscription,
    with a fast path that takes a plain chunk arriving in order straight to the transcript.

    Args:
        window: reorder's ``window``.
        max_pending: backpressure_buffer's ``max_pending``.
        overflow: backpressure_buffer's ``overflow``.
        timer: finalize's ``timer``.

    Returns:
        An operator that takes an observable of frames (str or bytes) and returns an
        observable of one ``Response``.

    Raises:
        ValueError: (at the call) ``window`` or ``max_pending`` is below 1, or ``overflow`` is
            not one of backpressure_buffer's strategies.
        StreamError: (to the observer) the error that ended the stream before its final
            chunk (a ``FrameError``, ``InvalidChunkError``, ``BufferOverflowError`` or the
            source's: ``AuthenticationError``, ``StreamTimeoutError``, …), its ``partial``
            keeping what arrived; ``IncompleteStreamError`` when the source completed
            without the final chunk (or failed with an error that is not rxstream's,
            then its ``__cause__``), finalize's.
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
    """parse_sse → reorder → backpressure_buffer → accumulate → finalize, fused into one operator.

    .. marble::
        :alt: sse_pipeline

        -e--p--f--d--|
        [ sse_pipeline() ]
        ----------(R|)

    ``e`` carries text, ``p`` is a keep-alive, ``f`` the finish reason, ``d`` is
    ``[DONE]``; ``R`` is the ``Response``, with ``e``'s text and ``f``'s
    ``finish_reason``. An input that ends after ``f`` without ``[DONE]`` gives ``R`` too.

    Args:
        window: reorder's ``window``.
        max_pending: backpressure_buffer's ``max_pending`` (``overflow`` is ``"block"``).
        choice: parse_sse's ``choice``.
        timer: finalize's ``timer``.

    Returns:
        An operator that takes an observable of ``SSEEvent``s and returns an observable of
        one ``Response``.

    Raises:
        ValueError: (at the call) ``window`` or ``max_pending`` is below 1.
        StreamError: (to the observer) the error that ended the stream before its final
            chunk (a ``FrameError``, a ``ResponseFailedError`` the server sent, or the
            source's), its ``partial`` keeping what arrived; ``IncompleteStreamError`` when
            the source completed without the final chunk, as finalize says.
    """
    stages = fuse(
        parse_sse(choice),
        reorder(window),
        backpressure_buffer(max_pending),
        accumulate(),
        finalize(timer),
    )
    return _WithFragmentPath(*stages.factories)


def responses_pipeline(
    window: int = 64,
    max_pending: int = 5,
    timer: Timer = time.perf_counter,
) -> Operator[Payload | SSEEvent, Response]:
    """parse_responses → reorder → backpressure_buffer → accumulate → finalize, fused into one operator.

    .. marble::
        :alt: responses_pipeline

        -c--t--t--d--|
        [ responses_pipeline() ]
        -----------(R|)

        -c--t--|
        [ responses_pipeline() ]
        -------#

    ``c`` is ``response.created``, ``t`` an ``output_text.delta`` and ``d``
    ``response.completed``; ``R`` is the ``Response``, with the deltas' text, the response
    id and the usage. In the second diagram the input ends before ``response.completed``:
    ``IncompleteStreamError``, whose ``partial`` holds both deltas' text.

    Args:
        window: reorder's ``window``, in sequence numbers.
        max_pending: backpressure_buffer's ``max_pending`` (``overflow`` is ``"block"``).
        timer: finalize's ``timer``.

    Returns:
        An operator that takes an observable of OpenAI Responses events (``SSEEvent``s, or
        each event's JSON text) and returns an observable of one ``Response``.

    Raises:
        ValueError: (at the call) ``window`` or ``max_pending`` is below 1.
        StreamError: (to the observer) the error that ended the stream before its final
            event (a ``ResponseFailedError``, a ``FrameError`` or the source's), its
            ``partial`` keeping what arrived; ``IncompleteStreamError`` when the source
            completed without the final event, as finalize says.
    """
    stages = fuse(
        parse_responses(),
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


class _WithFragmentPath(Operator[Any, Response]):
    """The fused five, with parse_sse handing lone argument fragments and plain text deltas to a
    ``FragmentPath`` (parse_responses its plain text deltas)."""

    def head(self, stages: list[Any]) -> abc.ObserverBase[SSEEvent]:
        parse = stages[0]
        parse.fragment_path = FragmentPath(*stages[1:])
        return parse  # type: ignore[no-any-return]
