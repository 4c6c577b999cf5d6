"""disorder: a numbered stream as a network delivers it, reordered within a window, duplicated, resent,
with chunks lost, and the outcome the README promises for what arrived."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st
from reactivex import Observable

from ..core._errors import IncompleteStreamError, InvalidChunkError
from ..core._values import PartKind, Response, ToolCall
from ._oracles import Expected, Failure
from ._streams import Stream, response_of

Timer = Callable[[], float]
LIFECYCLE = ("response.created", "response.in_progress", "response.completed", "response.incomplete")


@dataclass(frozen=True)
class Disordered:
    """A stream's frames as delivered (``indices`` are their indices, in the order sent), and
    the outcome rxstream promises for them with a reorder ``window`` of ``window``."""

    stream: Stream
    frames: tuple[Any, ...]
    indices: tuple[int, ...]
    window: int
    expected: Expected

    def pipeline(
        self, *, max_pending: int = 5, timer: Timer = time.perf_counter
    ) -> Callable[[Observable[Any]], Observable[Response]]:
        """rxstream's fused pipeline for the stream's protocol, with reorder's window this one."""
        return self.stream.pipeline(window=self.window, max_pending=max_pending, timer=timer)


@st.composite
def within_window(draw: st.DrawFn, count: int, window: int) -> list[int]:
    """A permutation of ``range(count)`` in which no index is displaced by ``window`` or more.

    Sorting by index plus an offset below ``window`` can only swap indices closer than
    ``window``, and when index i arrives every missing index m satisfies i - m < window.
    """
    offsets = draw(st.lists(st.floats(0, window, exclude_max=True), min_size=count, max_size=count))
    return sorted(range(count), key=lambda index: index + offsets[index])


@st.composite
def disorder(
    draw: st.DrawFn, stream: Stream, *, window: int = 8, duplicates: int = 3, resends: int = 3, drops: int = 0
) -> Disordered:
    """``stream``'s frames reordered within ``window``, up to ``duplicates`` frames sent twice in
    a row, up to ``resends`` sent again anywhere later, and up to ``drops`` never sent.

    The expected outcome: ``stream.expected`` when nothing needed was lost; otherwise, as the
    README promises, the partial response of the chunks before the first gap, with
    ``InvalidChunkError`` when a later chunk arrived (a gap reorder cannot close) and
    ``IncompleteStreamError`` when the stream just ended early. Only numbered streams (rxstream's
    chunk frames, Responses events) can be disordered: an SSE chat stream's events are numbered
    by their position in one ordered body.
    """
    if not stream.numbered:
        raise ValueError(f"a {stream.protocol} stream is numbered by position and cannot come out of order")
    if window < 1:
        raise ValueError("window must be at least 1")
    count = len(stream.frames)
    lost = set(draw(st.lists(st.integers(0, count - 1), max_size=drops))) if drops and count else set()
    sent = [index for index in draw(within_window(count, window)) if index not in lost]
    for _ in range(draw(st.integers(0, duplicates)) if sent else 0):
        at = draw(st.integers(0, len(sent) - 1))
        sent.insert(at + 1, sent[at])
    for _ in range(draw(st.integers(0, resends)) if sent else 0):
        at = draw(st.integers(0, len(sent) - 1))
        sent.insert(draw(st.integers(at + 1, len(sent))), sent[at])
    return Disordered(
        stream, tuple(stream.frames[index] for index in sent), tuple(sent), window, expected(stream, sent, window)
    )


def expected(stream: Stream, sent: Sequence[int], window: int) -> Expected:
    """What reorder makes of frames ``sent`` (by index): it delivers the contiguous prefix, drops
    copies, fails on a chunk ``window`` or more past the gap or on a gap left when the input
    ends, and completes once the final chunk (the last index) is delivered."""
    count = len(stream.frames)
    next_index, held = 0, set()
    for position, index in enumerate(sent):
        if index < next_index or index in held:
            continue  # a copy: dropped and counted
        if index - next_index >= window:
            return Failure(InvalidChunkError, partial(stream, next_index, sent[: position + 1]))
        held.add(index)
        while next_index in held:
            held.remove(next_index)
            next_index += 1
        if next_index == count:
            return stream.expected
    kind = InvalidChunkError if held else IncompleteStreamError
    return Failure(kind, partial(stream, next_index, sent))


def partial(stream: Stream, delivered: int, parsed: Sequence[int]) -> Response:
    """The partial Response of ``stream``'s first ``delivered`` chunks, after frames ``parsed`` were read."""
    runs: list[tuple[PartKind, str]] = []
    if stream.protocol == "chunks":
        for raw in stream.frames[:delivered]:
            chunk = orjson.loads(raw)["chunk"]
            runs.append(("text", chunk["data"] + chunk.get("text", "")))
            if "image_url" in chunk:
                runs.append(("image", chunk["image_url"]))
        return response_of(runs, delivered, complete=False)
    calls: dict[int, ToolCall] = {}
    refusal = ""
    for event in stream.messages[:delivered]:
        kind = event["type"]
        if kind == "response.output_text.delta":
            runs.append(("text", event["delta"]))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            runs.append(("reasoning", event["delta"]))
        elif kind == "response.refusal.delta":
            refusal += event["delta"]
        elif kind == "response.output_item.added" and event["item"]["type"] == "function_call":
            item = event["item"]
            calls[event["output_index"]] = ToolCall(event["output_index"], item["call_id"], item["name"], "")
        elif kind == "response.function_call_arguments.delta":
            call = calls[event["output_index"]]
            calls[call.index] = ToolCall(call.index, call.id, call.name, call.arguments + event["delta"])
    # the parser takes the response's id from the first lifecycle event it reads, delivered or not
    identified = any(stream.messages[index]["type"] in LIFECYCLE for index in parsed)
    return response_of(
        runs,
        delivered,
        complete=False,
        tool_calls=[calls[index] for index in sorted(calls)],
        refusal=refusal,
        response_id=stream.expected.id if identified else None,
    )
