"""What ``import rxstream`` costs, against reactivex and orjson, the two it cannot do without.

Each import runs in a fresh interpreter (a module imports once per process), the two
alternating so that drift hits both alike; the figure is the ratio of the medians. The
network sources and the store (httpx, websockets, sqlite3) load on first use, not here.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from .measure import Result, progress

BASELINE = "import reactivex, orjson"


def import_seconds(statement: str) -> float:
    code = f"import time; started = time.perf_counter(); {statement}; print(time.perf_counter() - started)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def run(repetitions: int) -> Result:
    progress(f"import cost: {repetitions} fresh interpreters each")
    ours, theirs = [], []
    for _ in range(repetitions):
        theirs.append(import_seconds(BASELINE))
        ours.append(import_seconds("import rxstream"))
    rxstream_ms, baseline_ms = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
    return Result(
        "import rxstream vs import reactivex, orjson (time)",
        rxstream_ms / baseline_ms,
        1.5,
        higher_is_better=False,
        detail=f"{rxstream_ms:.1f} vs {baseline_ms:.1f} ms",
    )
