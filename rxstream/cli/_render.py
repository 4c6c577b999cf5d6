"""What the CLI shows: live text as it arrives, retries as they happen, and the stats at the end."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TextIO

import orjson

from ..core._values import Response, Stats, Usage
from ..operators._accumulate import Delta
from ..protocol._decision import Retry

# Library hints name Python parameters; on the command line the same knob is a flag.
FLAGS = {
    "stream_timeout": "--timeout",
    "content_timeout": "--content-timeout",
    'send "background": true': "pass --background",
}


class LiveText:
    """Writes each delta's text to ``out`` as it arrives (a tool call as ``[tool call NAME] `` and its
    arguments as they grow, a refusal after ``[refusal] ``), and knows whether its line is still open."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.refusing = False
        self.line_open = False

    def show(self, delta: Delta) -> None:
        out = self.out
        written = delta.text
        for fragment in delta.tool_calls:
            if fragment.name is not None:
                written += f"\n[tool call {fragment.name}] "
            written += fragment.arguments
        if delta.refusal:
            if not self.refusing:
                written += "\n[refusal] "
                self.refusing = True
            written += delta.refusal
        if written:
            out.write(written)
            out.flush()
            self.line_open = not written.endswith("\n")

    def end_line(self) -> None:
        """End the text's line, so that what is printed next starts on its own."""
        if self.line_open:
            self.out.write("\n")
            self.out.flush()
            self.line_open = False


def retry_reporter(command: str, live: LiveText) -> Callable[[Retry], None]:
    """``on_retry`` for the CLI: one line on stderr as each reconnection is scheduled."""

    def report(retry: Retry) -> None:
        if live.out.isatty():
            live.end_line()  # on a terminal the two streams share the screen
        print(
            f"rxstream {command}: reconnecting in {retry.delay:.1f} s ({retry.attempt}/{retry.retries}): {retry.reason}",
            file=sys.stderr,
            flush=True,
        )

    return report


def flags_for(message: str) -> str:
    """A library message with the parameters it names as the CLI's flags."""
    for parameter, flag in FLAGS.items():
        message = message.replace(parameter, flag)
    return message


def per_second(amount: float, unit: str) -> str:
    """A rate with three significant digits in a unit that keeps it above 1 (never "0.00 MB/s")."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if amount >= scale:
            return f"{amount / scale:.3g} {prefix}{unit}/s"
    return f"{amount:.3g} {unit}/s"


def stats_table(stats: Stats) -> str:
    """The chunk protocol's stats: what reorder, the buffer and recovery did, and the throughput."""
    duration = stats.duration or 0.0
    return table(
        [
            ("chunks", f"{stats.chunks}"),
            ("reordered", f"{stats.out_of_order} (deepest {stats.reorder_depth})"),
            ("duplicates", f"{stats.duplicates}"),
            ("retries", f"{stats.retries}"),
            ("time to first chunk", milliseconds(stats.time_to_first_chunk)),
            (
                "throughput",
                f"{per_second(stats.chunks / duration, 'chunks')}, {per_second(stats.bytes / duration, 'B')}"
                if duration
                else "-",
            ),
        ]
    )


def chat_table(response: Response, first_token: float | None) -> str:
    """A chat answer's stats: why it stopped, its usage, time to first token and tokens per second."""
    usage = response.stats.usage or Usage()
    output = usage.output_tokens
    generating = (response.stats.duration or 0.0) - (first_token or 0.0)
    speed = per_second(output / generating, "tokens") if isinstance(output, int) and generating > 0 else "-"
    return table(
        [
            ("finish reason", response.finish_reason or "-"),
            ("usage", ", ".join(f"{name} {value}" for name, value in usage.items() if isinstance(value, int)) or "-"),
            ("time to first token", milliseconds(first_token)),
            ("tokens/s", speed.removesuffix(" tokens/s")),
            ("retries", f"{response.stats.retries}"),
        ]
    )


def milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def response_json(response: Response, error: Exception | None = None) -> str:
    """The response as JSON; a partial one (``"complete": false``) carries the ``error`` that ended it:
    its class (what a program would catch) and its message."""
    document: dict[str, Any] = {
        "id": response.id,
        "text": response.text,
        "complete": response.complete,
        "chunks": response.chunks,
        "reasoning": response.reasoning,
        "finish_reason": response.finish_reason,
        "refusal": response.refusal,
        "tool_calls": [asdict(call) for call in response.tool_calls],
        "reasoning_signatures": list(response.reasoning_signatures),
        "thinking": [asdict(block) for block in response.thinking],
        "parts": [{"kind": part.kind, "value": part.value} for part in response.parts],
        "stats": asdict(response.stats),
    }
    if error is not None:
        document["error"] = {"type": type(error).__name__, "message": str(error)}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
