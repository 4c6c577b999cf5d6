"""The whole suite: ``python -m benchmarks`` or ``rxstream bench``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import asdict

import orjson

from rxstream.cli._bench import add_options

from . import imports, in_memory, loopback, memory, responses, sse_decoder, tool_calls
from .measure import Result

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
}


async def run_all(sizes: dict[str, int]) -> list[Result]:
    results = in_memory.run(sizes["frames"], sizes["repetitions"])
    results.append(await loopback.loopback(sizes["loopback"], sizes["repetitions"]))
    results.append(await memory.response_memory(sizes["response"]))
    results.extend(await loopback.scale(sizes["streams"], sizes["frames_each"], sizes["repetitions"]))
    results.append(await memory.slow_consumer(sizes["held_back"]))
    results.extend(tool_calls.run(sizes["fragments"], sizes["repetitions"]))
    results.append(imports.run(sizes["imports"]))
    results.extend(responses.run(sizes["responses"], sizes["repetitions"]))
    results.extend(await responses.over_http(sizes["responses"], sizes["repetitions"]))
    results.extend(sse_decoder.run(sizes["sse_bytes"], sizes["repetitions"]))
    return results


def table(results: Sequence[Result]) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'benchmark':<{width}}  {'figure':>8}  {'target':>8}  verdict  detail"]
    for r in results:
        target = f"{'≥' if r.higher_is_better else '≤'}{r.target:g}"
        verdict = "PASS" if r.passed else "FAIL"
        lines.append(f"{r.name:<{width}}  {r.ratio:>8.2f}  {target:>8}  {verdict:<7}  {r.detail}")
    return "\n".join(lines)


def report(args: argparse.Namespace) -> int:
    results = asyncio.run(run_all(QUICK if args.quick else FULL))
    print(table(results))
    if args.json:
        with open(args.json, "wb") as out:
            out.write(orjson.dumps([{**asdict(r), "passed": r.passed} for r in results], option=orjson.OPT_INDENT_2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    add_options(parser)
    return report(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
