"""The whole suite: ``python -m benchmarks`` or ``rxstream bench``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from functools import partial
from typing import TypeVar

import orjson

from rxstream.cli._bench import add_options

from . import imports, in_memory, loopback, memory, redis_streams, responses, sse, sse_decoder, stores, tool_calls
from .measure import Result, Stages

_T = TypeVar("_T")

FULL = {
    "fragments": 20_000,
    "responses": 20_000,
    "frames": 200_000,
    "repetitions": 5,
    "loopback": 200_000,
    "streams": 1000,
    "frames_each": 500,
    "response": 15_000_000,
    "held_back": 100_000,
    "imports": 21,
    "sse_bytes": 1_000_000,
    "saves": 500,
    "turns": 1000,
    "sse_events": 20_000,
    "sse_streams": 200,
    "sse_events_each": 500,
    "responses_deltas": 20_000,  # row 13: 5,000 took 0.04 s, too short to time steadily
    "redis": 50_000,
    "redis_latency": 2000,
}
QUICK = {
    "fragments": 200,
    "responses": 200,
    "frames": 2_000,
    "repetitions": 1,
    "loopback": 2_000,
    "streams": 20,
    "frames_each": 20,
    "response": 200_000,
    "held_back": 2_000,
    "imports": 1,
    "sse_bytes": 20_000,
    "saves": 20,
    "turns": 20,
    "sse_events": 200,
    "sse_streams": 5,
    "sse_events_each": 20,
    "responses_deltas": 200,
    "redis": 500,
    "redis_latency": 50,
}
# Each group's usual share of a full run (seconds on a quiet 2-core machine), for the progress's ETA.
WEIGHTS = {
    "in memory": 150.0,
    "loopback": 15.0,
    "memory": 15.0,
    "scale": 60.0,
    "slow consumer": 5.0,
    "tool calls": 10.0,
    "imports": 10.0,
    "responses": 10.0,
    "responses over HTTP": 30.0,
    "SSE in memory": 5.0,
    "SSE, one stream": 10.0,
    "SSE, concurrent streams": 40.0,
    "Responses over HTTP vs httpx-sse": 10.0,
    "WebSocket cost a stream": 90.0,
    "SSE decoder": 10.0,
    "stores": 30.0,
    "through Redis": 30.0,
}


async def run_all(sizes: dict[str, int], stages: Stages | None = None) -> list[Result]:
    """Every row, group by group; ``stages`` shows the progress of a full run."""
    reps = sizes["repetitions"]
    groups: dict[str, Callable[[], Awaitable[list[Result]]]] = {
        "in memory": partial(at_once, in_memory.run, sizes["frames"], reps),
        "loopback": lambda: listed(loopback.loopback(sizes["loopback"], reps)),
        "memory": lambda: listed(memory.response_memory(sizes["response"])),
        "scale": partial(loopback.scale, sizes["streams"], sizes["frames_each"], reps),
        "slow consumer": lambda: listed(memory.slow_consumer(sizes["held_back"])),
        "tool calls": partial(at_once, tool_calls.run, sizes["fragments"], reps),
        "imports": lambda: listed(at_once(imports.run, sizes["imports"])),
        "responses": partial(at_once, responses.run, sizes["responses"], reps),
        "responses over HTTP": partial(responses.over_http, sizes["responses"], reps),
        "SSE in memory": partial(at_once, sse.in_memory, sizes["sse_events"], reps),
        "SSE, one stream": partial(sse.one_stream, sizes["sse_events"], reps),
        "SSE, concurrent streams": partial(sse.concurrent, sizes["sse_streams"], sizes["sse_events_each"], reps),
        "Responses over HTTP vs httpx-sse": partial(sse.responses, sizes["responses_deltas"], reps),
        "WebSocket cost a stream": partial(loopback.overhead, sizes["streams"], sizes["frames_each"], reps),
        "SSE decoder": partial(at_once, sse_decoder.run, sizes["sse_bytes"], reps),
        "stores": partial(stores.run, sizes["saves"], sizes["turns"], reps),
        "through Redis": partial(redis_streams.run, sizes["redis"], sizes["redis_latency"], reps),
    }
    results: list[Result] = []
    for name, group in groups.items():
        if stages is not None:
            stages.begin(name)
        results.extend(await group())
        if stages is not None:
            stages.end(name)
    return results


async def listed(row: Awaitable[Result]) -> list[Result]:
    return [await row]


async def at_once(run: Callable[..., _T], *args: int) -> _T:
    """A row that measures synchronously, on this thread (the loop waits)."""
    return run(*args)


WIDTH = 100
LEFT = 26  # verdict, figure and target, before the row's name


def table(results: Sequence[Result], *, verdicts: bool) -> str:
    """The rows in at most ``WIDTH`` columns: verdict, figure and target, the name, then the detail below it.
    Without ``verdicts`` (a quick run) only the names: tiny sizes measure nothing."""
    if not verdicts:
        lines = [
            "quick run: tiny sizes, checking that every row runs (the wiring); its figures measure nothing,",
            "so it gives no verdict. Run `rxstream bench` without --quick to measure.",
        ]
        lines += [f"ran  {line}" for r in results for line in textwrap.wrap(r.name, WIDTH - 5)]
        return "\n".join(lines)
    lines = [f"{'verdict':<8}{'figure':>8}  {'target':<8}row, and what is behind the figure"]
    for r in results:
        target = f"{'≥' if r.higher_is_better else '≤'} {r.target:g}"
        head = f"{'PASS' if r.passed else 'FAIL':<8}{r.ratio:>8.2f}  {target:<8}"
        name = textwrap.wrap(r.name, WIDTH - LEFT)
        detail = textwrap.wrap(r.detail, WIDTH - LEFT - 2)
        lines.append(head + name[0])
        lines += [" " * LEFT + line for line in name[1:]]
        lines += [" " * (LEFT + 2) + line for line in detail]
    return "\n".join(lines)


def report(args: argparse.Namespace) -> int:
    stages = None if args.quick else Stages(WEIGHTS)
    results = asyncio.run(run_all(QUICK if args.quick else FULL, stages))
    print(table(results, verdicts=not args.quick))
    if args.json:
        with open(args.json, "wb") as out:
            rows = [{**asdict(r), **({} if args.quick else {"passed": r.passed})} for r in results]
            out.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    add_options(parser)
    return report(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
