"""Every benchmark runs, at a tiny size: correctness only, no timing asserted."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from benchmarks import responses, sse, sse_batches, sse_decoder, tool_calls
from benchmarks.in_memory import SeedLoop, hand_loop, make_frames, pipeline
from benchmarks.measure import Result, Stages
from benchmarks.suite import table

from .services import POSTGRES, postgres_problem


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


def test_the_sse_contenders_agree_in_memory() -> None:
    reads = sse.pieces(sse.chat_body(300), 1000)
    assert sse.through_sse_pipeline(reads) == sse.split_join(reads) and len(sse.split_join(reads)) == 300 * sse.CHUNK


def test_the_batched_stages_model_gives_the_pipelines_text() -> None:
    reads = sse.pieces(sse.chat_body(300), 1000)
    assert sse_batches.batched_stages(reads) == sse.through_sse_pipeline(reads)


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
        env={**os.environ, "RXSTREAM_BENCH_POSTGRES": POSTGRES.url},
        # as installed: from the checkout's root, `-m rxstream` would find its rxstream/ folder,
        # which has no _benchmarks (the strict editable install links benchmarks/ in as that)
        cwd=tmp_path,
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
        *(() if postgres_problem() else ("PostgresStore saves", "PostgresStore history")),  # rows that need the server
        "SSE in memory",
        "SSE, 1 stream",
        "concurrent streams × 20: default stream_sse vs httpx-sse, events/s",
        "client CPU, httpx-sse ÷ default stream_sse",
        "stream_responses vs the httpx-sse loop",
        "cost beyond the frames, rxstream ÷ bare websockets",
        "through Redis",
    ):
        assert any(expected in name for name in names), expected
    assert sum(name.startswith("in memory, ") for name in names) == 16  # 8 cases, against the seed and the hand loop
    assert all(math.isfinite(row["ratio"]) and "passed" not in row for row in rows)
    # tiny sizes measure nothing: it says so, and gives no verdict
    assert "checking that every row runs" in result.stdout
    assert "PASS" not in result.stdout and "FAIL" not in result.stdout
    assert "in memory" in result.stderr  # progress is shown while it runs
    assert max(len(line) for line in (result.stdout + result.stderr).splitlines()) <= 100


def test_the_full_table_fits_100_columns_with_target_and_verdict() -> None:
    rows = [
        Result("a name long enough to wrap: " + "word " * 30, 1.234, 1.0, detail="figures " * 40),
        Result("short", 0.5, 1.2, higher_is_better=False),
    ]
    shown = table(rows, verdicts=True).splitlines()
    assert max(len(line) for line in shown) <= 100
    assert shown[1].startswith("PASS        1.23  ≥ 1     a name long enough")
    assert any(line.startswith("PASS        0.50  ≤ 1.2   short") for line in shown)


def test_the_progress_says_which_group_how_far_and_when_it_ends(capsys: pytest.CaptureFixture[str]) -> None:
    stages = Stages({"first": 1.0, "second": 3.0})
    stages.begin("first")
    stages.end("first")
    stages.begin("second")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("[ 1/2] first:   0% done, 0:00 elapsed, ETA after the first group")
    assert lines[1].startswith("[ 2/2] second:  25% done, 0:00 elapsed, ETA 0:0")
