"""Which in-memory test runs which line: the suite run once under coverage, one context per test.

Run as ``python -m tools.mutate._coverage OUT.json IGNORE_GLOB FILE...`` (a child process of its own, so
that the driver's process never imports rxstream unmutated before forking its mutants).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Generator
from pathlib import Path

import coverage
import pytest


class _PerTest:
    """Gives each test its own coverage context (its node id) and times it."""

    def __init__(self, measure: coverage.Coverage) -> None:
        self.measure = measure
        self.seconds: dict[str, float] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None]:
        self.measure.switch_context(item.nodeid)
        started = time.perf_counter()
        yield
        self.seconds[item.nodeid] = time.perf_counter() - started
        self.measure.switch_context("")


def main(out: str, ignore: str, files: list[str]) -> int:
    paths = [str(Path(file).resolve()) for file in files]
    measure = coverage.Coverage(data_file=None, include=paths, config_file=False)
    per_test = _PerTest(measure)
    measure.start()
    options = ["-m", "not network", "-q", "-p", "no:cacheprovider", "--hypothesis-profile=ci"]
    code = pytest.main([*options, *([f"--ignore-glob={ignore}"] if ignore else [])], plugins=[per_test])
    measure.stop()
    data = measure.get_data()
    lines: dict[str, dict[int, list[str]]] = {}
    for file, path in zip(files, paths, strict=True):
        by_line = data.contexts_by_lineno(path) if path in data.measured_files() else {}
        # A line only the imports ran (a module constant, a def) maps to no test: the driver gives it every test of the module.
        lines[file] = {line: sorted(context for context in contexts if context) for line, contexts in by_line.items()}
    Path(out).write_text(json.dumps({"seconds": per_test.seconds, "lines": lines}))
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
