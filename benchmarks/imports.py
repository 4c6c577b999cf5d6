"""What ``import rxstream`` costs, against reactivex and orjson, the two it cannot do without.

Each import runs in a fresh interpreter (a module imports once per process), the two
alternating so that drift hits both alike; the figure is the ratio of the medians. The
network sources and the store (httpx, websockets, sqlite3) load on first use, not here.

Both import from compiled bytecode, as an installed package does (pip compiles it when it
installs): the children may write their ``__pycache__`` even where PYTHONDONTWRITEBYTECODE is
set, and one import of each before the timing writes it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from .measure import Result, progress

BASELINE = "import reactivex, orjson"


def import_seconds(statement: str) -> float:
    code = f"import time; started = time.perf_counter(); {statement}; print(time.perf_counter() - started)"
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    )


def run(repetitions: int) -> Result:
    progress(f"import cost: {repetitions} fresh interpreters each")
    import_seconds(BASELINE), import_seconds("import rxstream")  # compiles what is not compiled yet
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
