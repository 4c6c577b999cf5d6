"""Every benchmark runs, at a tiny size: correctness only, no timing asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from benchmarks import responses, sse_decoder, tool_calls
from benchmarks.in_memory import SeedLoop, hand_loop, make_frames, pipeline


def test_the_in_memory_contenders_agree() -> None:
    frames = make_frames(500, 16)
    assert pipeline(frames) == hand_loop(frames) == SeedLoop().run(frames) == "partial text, 部分文本 " * 500


def test_the_tool_call_contenders_agree() -> None:
    events = tool_calls.tool_call_events(300)
    assert tool_calls.arguments_agree(events)
    assert [call.parsed()["a"] for call in tool_calls.through_rxstream(events).tool_calls] == [
        ["Edinb"] * 100 + [0]
    ] * 3
    assert len(tool_calls.text_events(300)) == len(events)
    assert {len(event.data) for event in tool_calls.text_events(300)[1:-2]} == {len(events[tool_calls.CALLS + 1].data)}


def test_the_responses_contenders_agree() -> None:
    events = responses.response_events(300)
    assert responses.results_agree(events)
    assert len(responses.through_rxstream(events).text) == 300 * responses.CHUNK


def test_the_sse_decoder_contenders_agree() -> None:
    for name, reads in sse_decoder.bodies(3000).items():
        assert sse_decoder.through_rxstream(reads) == sse_decoder.through_openai(reads), name
    assert sse_decoder.through_rxstream(sse_decoder.bodies(3000)["a chat stream in 4 KiB reads"]) == 3000 // len(
        sse_decoder.EVENT
    )


@pytest.mark.network
def test_rxstream_bench_quick_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "rxstream", "bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = orjson.loads(out.read_bytes())
    names = [row["name"] for row in rows]
    for expected in (
        "pipeline vs seed loop",
        "pipeline vs hand loop",
        "loopback",
        "memory",
        "concurrent streams",
        "p99",
        "slow consumer",
        "openai ChatCompletionStreamState",
        "fragments vs text",
        "import rxstream",
        "openai ResponseStreamState",
        "responses over HTTP",
        "SSE decoder",
    ):
        assert any(expected in name for name in names), expected
    assert all(row["ratio"] >= 0 for row in rows)
    assert "PASS" in result.stdout or "FAIL" in result.stdout
    assert "in memory" in result.stderr  # progress is shown while it runs
