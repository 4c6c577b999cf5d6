"""Running the tests against each mutant: a forked child per mutant, two at a time.

The driver imports pytest and the test dependencies once, never rxstream; each child puts
the mutated module ahead of the real one on the import path (a meta path finder) and runs
``pytest`` on the tests that cover the mutated lines, stopping at the first failure.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ._mutants import Mutant


class _MutatedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``name`` from ``source`` instead of its file."""

    def __init__(self, name: str, path: str, source: bytes) -> None:
        self.name, self.path, self.source = name, path, source

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=self.path)

    def exec_module(self, module: ModuleType) -> None:
        module.__file__ = self.path
        exec(compile(self.source, self.path, "exec"), module.__dict__)


def _preload() -> None:
    """Import, once, what every child would import again: pytest's own plugins and those of the
    installed packages, and the libraries rxstream and its tests use (never rxstream itself)."""
    from _pytest.config import default_plugins

    names = [f"_pytest.{name}" for name in default_plugins]
    # rxstream's own plugin (rxstream.testing._plugin) imports rxstream: loaded here, every child would run the unmutated modules
    plugins = importlib.metadata.entry_points(group="pytest11")
    names += [entry.module for entry in plugins if entry.module.partition(".")[0] != "rxstream"]
    names += ["reactivex", "orjson", "jiter", "websockets.asyncio.client", "websockets.asyncio.server", "httpx"]
    names += ["pydantic", "openai.types.chat", "openai.types.responses", "anthropic.types"]  # the SDKs as oracles
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # a plugin that cannot load here fails in the child, where pytest says why
            pass
    imported = sorted(name for name in sys.modules if name.partition(".")[0] == "rxstream")
    if imported:
        raise RuntimeError(f"preloading imported {', '.join(imported[:3])}: no mutant of those would be run")


class _FirstFailure:
    """Writes the node id of the first test that fails to ``path``: the test that killed the mutant."""

    def __init__(self, path: str) -> None:
        self.path = path

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed and not os.path.exists(self.path):
            with open(self.path, "w") as out:
                out.write(report.nodeid)


MAX_EXAMPLES = 25


@dataclass(frozen=True)
class Job:
    """One pytest run: ``tests`` against the module at ``path`` replaced by ``source``."""

    mutant: Mutant | None  # None: the unmutated module (the baseline run)
    path: str
    source: bytes
    tests: list[str]
    timeout: float


def outcomes(jobs: list[Job], workers: int, scratch: str) -> Iterator[tuple[Job, str, str]]:
    """``(job, outcome, the test that failed first)`` as each finishes; the outcome is "killed", "survived",
    "timeout", or "error N" (pytest could not run)."""
    import pytest  # the children inherit it, and every test dependency it loads, ready

    _preload()
    from hypothesis import settings

    # The ci profile with at most MAX_EXAMPLES examples a property: a survivor runs every test
    # that covers it, so the examples are what a run costs. Shrinking stays on: it costs time on a
    # killed mutant only, and rxstream.testing's check_operator names the smallest failing input,
    # which its own tests assert (tests/test_testing_contract.py).
    settings.register_profile("mutation", derandomize=True, database=None, deadline=None, max_examples=MAX_EXAMPLES)
    given_settings = settings.__init__

    def capped(self: settings, parent: settings | None = None, **options: Any) -> None:
        if options.get("max_examples", 0) > MAX_EXAMPLES:
            options["max_examples"] = MAX_EXAMPLES
        given_settings(self, parent, **options)

    settings.__init__ = capped  # type: ignore[method-assign]

    pending = list(reversed(jobs))
    running: dict[int, tuple[Job, float]] = {}
    while pending or running:
        while pending and len(running) < workers:
            job = pending.pop()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                code = 3
                try:
                    quiet = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(quiet, 1)
                    os.dup2(quiet, 2)
                    name = job.path.removesuffix(".py").replace("/", ".")
                    sys.meta_path.insert(0, _MutatedModule(name, os.path.abspath(job.path), job.source))
                    options = [
                        "-x",
                        "-q",
                        "-m",
                        "not network",
                        "-p",
                        "no:cacheprovider",
                        "--hypothesis-profile=mutation",
                        # pytest's assertion rewriter loads every module of a plugin's distribution
                        # (rxstream's, by its pytest11 entry point) from disk, ahead of the mutant
                        "--assert=plain",
                    ]
                    first_failure = _FirstFailure(os.path.join(scratch, str(os.getpid())))
                    code = int(pytest.main([*options, *job.tests], plugins=[first_failure]))
                finally:
                    os._exit(code)
            running[pid] = (job, time.monotonic() + job.timeout)
        finished, status = os.waitpid(-1, os.WNOHANG)
        if finished == 0:
            for pid, (_, deadline) in running.items():
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
            continue
        job, deadline = running.pop(finished)
        code = os.waitstatus_to_exitcode(status)
        failed_first = os.path.join(scratch, str(finished))
        killer = ""
        if os.path.exists(failed_first):
            with open(failed_first) as written:
                killer = written.read()
            os.remove(failed_first)
        if code == -signal.SIGKILL:
            yield job, "timeout", killer
        elif code in (0, 1):
            yield job, "survived" if code == 0 else "killed", killer
        else:
            yield job, f"error {code}", killer
