"""1. In memory: the five-operator pipeline against the seed loop, a hand loop and orjson alone."""

from __future__ import annotations

import json
import random
from functools import partial

import orjson

import rxstream

from .measure import Result, medians, progress


class SeedLoop:
    """What the seed did: json.loads per frame and ``self.buf += data`` (quadratic on an attribute)."""

    def __init__(self) -> None:
        self.buf = ""

    def run(self, frames: list[bytes]) -> str:
        held: dict[int, str] = {}
        expected = 0
        for raw in frames:
            chunk = json.loads(raw)["chunk"]
            held[chunk["index"]] = chunk["data"]
            while expected in held:
                self.buf += held.pop(expected)
                expected += 1
        return self.buf


def seed_loop(frames: list[bytes]) -> str:
    return SeedLoop().run(frames)


def hand_loop(frames: list[bytes]) -> str:
    """What a careful user writes by hand: orjson, a dict reorder buffer, ''.join."""
    held: dict[int, dict[str, object]] = {}
    expected = 0
    out: list[str] = []
    for raw in frames:
        chunk = orjson.loads(raw)["chunk"]
        held[chunk["index"]] = chunk
        while expected in held:
            out.append(held.pop(expected)["data"])  # type: ignore[arg-type]
            expected += 1
    return "".join(out)


def loads_only(frames: list[bytes]) -> None:
    loads = orjson.loads
    for raw in frames:
        loads(raw)


def pipeline(frames: list[bytes]) -> str:
    responses: list[rxstream.Response] = []
    rxstream.from_frames(frames).pipe(rxstream.pipeline()).subscribe(responses.append)
    return responses[0].text


def make_frames(count: int, shuffle_window: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    order = list(range(count))
    if shuffle_window > 1:
        keys = {i: i + rng.uniform(0, shuffle_window - 1) for i in order}
        order.sort(key=keys.__getitem__)
    piece = "partial text, 部分文本 "
    return [
        orjson.dumps({"chunk": {"index": i, "data": piece, "is_final": i == count - 1}, "timestamp": 1672531200})
        for i in order
    ]


def run(frames_count: int, repetitions: int) -> list[Result]:
    orders = {"in order": make_frames(frames_count, 0), "shuffled (window 16)": make_frames(frames_count, 16)}
    times: dict[str, dict[str, float]] = {}
    for label, frames in orders.items():
        progress(f"in memory, {frames_count:,} frames {label}")
        expected = hand_loop(frames)
        assert pipeline(frames) == expected, "the pipeline and the hand loop disagree"
        times[label] = medians(
            {
                "pipeline": partial(pipeline, frames),
                "hand": partial(hand_loop, frames),
                "loads": partial(loads_only, frames),
            },
            repetitions,
        )
    # The seeds last, and once each: they are quadratic (five runs would take many minutes), and
    # the heap their huge string leaves behind can slow what runs after it, the pipeline's
    # in-place rope most (one full run read the shuffled ratio at 0.54 measured right after the
    # in-order seed, against 0.72-0.75 in runs of the same code without it).
    for label, frames in orders.items():
        progress(f"in memory, the seed loop over {frames_count:,} frames {label} (it takes a while: it is quadratic)")
        times[label] |= medians({"seed": partial(seed_loop, frames)}, 1)
    results = []
    for label, frames in orders.items():
        seconds = times[label]
        size = sum(len(f) for f in frames) / 1e6
        rate = frames_count / seconds["pipeline"]
        detail = f"{rate:,.0f} frames/s, {size / seconds['pipeline']:.1f} MB/s"
        extra = {f"{name}_seconds": value for name, value in seconds.items()}
        results.append(
            Result(
                f"in memory {label}: pipeline vs seed loop",
                seconds["seed"] / seconds["pipeline"],
                2.0,
                detail=detail,
                extra=extra,
            )
        )
        results.append(
            Result(
                f"in memory {label}: pipeline vs hand loop", seconds["hand"] / seconds["pipeline"], 0.75, detail=detail
            )
        )
        results.append(
            Result(
                f"in memory {label}: pipeline vs orjson.loads alone",
                seconds["loads"] / seconds["pipeline"],
                0.0,
                detail="for scale",
            )
        )
    return results
