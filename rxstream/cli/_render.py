"""What the CLI shows: live text as it arrives, and the stats table at the end."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TextIO

import orjson
from reactivex import operators as ops

from .. import operators as rxo
from ..core._values import Response, Stats
from ..operators._accumulate import Delta


def live_pipeline(out: TextIO = sys.stdout, *, parse: Callable[[Any], Any] | None = None) -> list[Callable[[Any], Any]]:
    """The five operators (``parse`` for another format), with the text written to ``out`` as each delta arrives;
    a tool call as ``[tool call NAME] `` and its arguments as they grow, a refusal after ``[refusal] ``."""
    refusing = False

    def show(delta: Delta) -> None:
        nonlocal refusing
        out.write(delta.text)
        for fragment in delta.tool_calls:
            if fragment.name is not None:
                out.write(f"\n[tool call {fragment.name}] ")
            out.write(fragment.arguments)
        if delta.refusal:
            if not refusing:
                out.write("\n[refusal] ")
                refusing = True
            out.write(delta.refusal)
        out.flush()

    return [
        parse or rxo.parse(),
        rxo.reorder(),
        rxo.backpressure_buffer(),
        rxo.accumulate(),
        ops.do_action(show),
        rxo.finalize(),
    ]


def stats_table(stats: Stats) -> str:
    duration = stats.duration or 0.0
    rows = [
        ("chunks", f"{stats.chunks}"),
        ("reordered", f"{stats.out_of_order} (deepest {stats.reorder_depth})"),
        ("duplicates", f"{stats.duplicates}"),
        ("retries", f"{stats.retries}"),
        ("time to first chunk", f"{(stats.time_to_first_chunk or 0.0) * 1000:.1f} ms"),
        (
            "throughput",
            f"{stats.chunks / duration:,.0f} chunks/s, {stats.bytes / duration / 1e6:.2f} MB/s" if duration else "-",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def response_json(response: Response) -> str:
    document = {
        "id": response.id,
        "text": response.text,
        "complete": response.complete,
        "chunks": response.chunks,
        "reasoning": response.reasoning,
        "finish_reason": response.finish_reason,
        "refusal": response.refusal,
        "tool_calls": [asdict(call) for call in response.tool_calls],
        "reasoning_signatures": list(response.reasoning_signatures),
        "parts": [{"kind": part.kind, "value": part.value} for part in response.parts],
        "stats": asdict(response.stats),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
