"""1. In memory: the five-operator pipeline against the seed loop, a hand loop and orjson alone, in eight
cases: ASCII and Chinese text, str and bytes frames, in order and shuffled within 16."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from functools import partial

import orjson

import rxstream

from .measure import Result, medians, progress


class SeedLoop:
    """What the seed did: json.loads per frame and ``self.buf += data`` (quadratic on an attribute)."""

    def __init__(self) -> None:
        self.buf = ""

    def run(self, frames: Sequence[str | bytes]) -> str:
        held: dict[int, str] = {}
        expected = 0
        for raw in frames:
            chunk = json.loads(raw)["chunk"]
            held[chunk["index"]] = chunk["data"]
            while expected in held:
                self.buf += held.pop(expected)
                expected += 1
        return self.buf


def seed_loop(frames: Sequence[str | bytes]) -> str:
    return SeedLoop().run(frames)


def hand_loop(frames: Sequence[str | bytes]) -> str:
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


def loads_only(frames: Sequence[str | bytes]) -> None:
    loads = orjson.loads
    for raw in frames:
        loads(raw)


def pipeline(frames: Sequence[str | bytes]) -> str:
    responses: list[rxstream.Response] = []
    rxstream.from_frames(frames).pipe(rxstream.pipeline()).subscribe(responses.append)
    return responses[0].text


PIECES = {"ASCII": "partial text, more of it ", "Chinese": "部分文本，还有更多的文字。"}


def make_frames(count: int, shuffle_window: int, seed: int = 0, piece: str = "partial text, 部分文本 ") -> list[bytes]:
    rng = random.Random(seed)
    order = list(range(count))
    if shuffle_window > 1:
        keys = {i: i + rng.uniform(0, shuffle_window - 1) for i in order}
        order.sort(key=keys.__getitem__)
    return [
        orjson.dumps({"chunk": {"index": i, "data": piece, "is_final": i == count - 1}, "timestamp": 1672531200})
        for i in order
    ]


def cases(frames_count: int) -> dict[str, tuple[list[str] | list[bytes], list[str] | list[bytes]]]:
    """The eight cases: ASCII and Chinese text, str and bytes frames, each as (in order, shuffled within 16)."""
    made: dict[str, tuple[list[str] | list[bytes], list[str] | list[bytes]]] = {}
    for language, piece in PIECES.items():
        ordered, shuffled = make_frames(frames_count, 0, piece=piece), make_frames(frames_count, 16, piece=piece)
        made[f"{language}, bytes"] = (ordered, shuffled)
        made[f"{language}, str"] = ([f.decode() for f in ordered], [f.decode() for f in shuffled])
    return made


def run(frames_count: int, repetitions: int) -> list[Result]:
    """The pipeline against the hand loop and orjson alone in each case, interleaved; then the seed
    loop once a case on its in-order frames (it reorders nothing well: a dict and ``+=``)."""
    times: dict[str, dict[str, float]] = {}
    made = cases(frames_count)
    for label, orders in made.items():
        for order, frames in zip(("in order", "shuffled"), orders, strict=True):
            progress(f"in memory, {frames_count:,} frames, {label}, {order}")
            assert pipeline(frames) == hand_loop(frames), "the pipeline and the hand loop disagree"
            times[f"{label}, {order}"] = medians(
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
    seeds: dict[str, float] = {}
    for label, (ordered, _) in made.items():
        progress(f"in memory, the seed loop over {frames_count:,} frames, {label} (quadratic: it takes a while)")
        seeds[label] = medians({"seed": partial(seed_loop, ordered)}, 1)["seed"]
    results = []
    for case, seconds in times.items():
        label = case.rsplit(", ", 1)[0]
        frames = made[label][case.endswith("shuffled")]
        size = sum(len(f) for f in frames) / 1e6
        rate = frames_count / seconds["pipeline"]
        detail = (
            f"{rate:,.0f} frames/s, {size / seconds['pipeline']:.1f} MB/s; the hand loop {seconds['hand'] / seconds['pipeline']:.2f}x,"
            f" orjson.loads alone {seconds['loads'] / seconds['pipeline']:.2f}x the pipeline's time"
        )
        extra = {f"{name}_seconds": value for name, value in seconds.items()} | {"seed_seconds": seeds[label]}
        results.append(
            Result(f"in memory, {case}: pipeline vs seed loop", seeds[label] / seconds["pipeline"], 2.0, extra=extra)
        )
        results.append(
            Result(
                f"in memory, {case}: pipeline vs hand loop", seconds["hand"] / seconds["pipeline"], 0.8, detail=detail
            )
        )
    return results
