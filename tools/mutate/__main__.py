"""``python -m tools.mutate [FILE...]``: mutate each module, run the in-memory tests that cover
each mutant, and write the report (per-module scores, every survivor with its classification).

Survivors are classified by hand in ``tools/mutate/survivors.toml`` (equivalent, or left with
a reason), matched by module, source line and mutation, so a classification outlives edits
elsewhere in the module.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from ._mutants import Mutant, mutants
from ._run import Job, outcomes

LAYERS = ("rxstream/core", "rxstream/operators", "rxstream/protocol")
HERE = Path(__file__).parent


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutate", description=__doc__)
    parser.add_argument("files", nargs="*", help="modules to mutate (default: every module of the synchronous layers)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", default=str(HERE / "REPORT.md"))
    parser.add_argument(
        "--rerun",
        metavar="RESULTS",
        help="run only the mutants a previous run (its REPORT.json) did not kill; the rest count as killed "
        "(sound when only tests changed since)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="GLOB",
        help="of the tests that cover a mutant, run only those whose node id matches one of these "
        "(with --rerun: the tests added since)",
    )
    parser.add_argument(
        "--coverage",
        metavar="JSON",
        help="where to keep the per-test coverage: read if it exists, else measured and written",
    )
    parser.add_argument(
        "--ignore-glob", metavar="GLOB", help="leave these test files out (e.g. to measure the suite before new tests)"
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        metavar="TEST",
        help="run these tests (files or node ids) on every mutant, without measuring coverage: which mutants do they kill?",
    )
    parser.add_argument(
        "--keep-classified",
        action="store_true",
        help="with --rerun: a survivor of that run that survivors.toml classifies keeps its outcome, not run again",
    )
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="RESULTS",
        help="run nothing: write one report from these runs' results (their REPORT.json), each run's modules "
        "as it found them (a module in several: the last named)",
    )
    parser.add_argument(
        "--before",
        nargs="+",
        metavar="RESULTS",
        help="results of runs of the suite before the new tests, combined the same way: a score-before column",
    )
    arguments = parser.parse_args()
    every = sorted(str(path) for layer in LAYERS for path in Path(layer).glob("_*.py"))
    classified = tomllib.loads((HERE / "survivors.toml").read_text()).get("survivor", [])
    reasons = {(entry["module"], entry["code"], entry["mutation"]) for entry in classified}
    before_entries = _combined(arguments.before) if arguments.before else None
    if arguments.combine:
        entries = _combined(arguments.combine)
        header = [
            "# Mutation testing: the last results, combined",
            "",
            f"`python -m tools.mutate {' '.join(sys.argv[1:])}`".replace(" `", "`"),
            f"on {_commit()}, {time.strftime('%Y-%m-%d', time.gmtime())}: the parts' results as each run "
            "found them (how each was run: the report beside its results, e.g. `tools/mutate/runs/core.md`).",
        ]
        report = _report(
            header, entries, sorted({entry["module"] for entry in entries}), every, classified, before_entries
        )
        Path(arguments.report).with_suffix(".json").write_text(json.dumps(entries, indent=0) + "\n")
        Path(arguments.report).write_text(report)
        print(f"wrote {arguments.report}")
        return 0
    # Each child imports rxstream and the tests afresh: compiled once and kept, not compiled each time.
    sys.dont_write_bytecode = False
    files = arguments.files or every
    started = time.monotonic()
    measured = _measured(every, files, arguments.tests, arguments.ignore_glob, arguments.coverage)
    seconds: dict[str, float] = measured["seconds"]
    jobs: list[Job] = []
    uncovered: list[Mutant] = []
    results: list[tuple[Mutant, str]] = []
    killed_by: dict[tuple[str, str, str, int], str] = {}  # the test that failed first, where one did
    before = _entries_in(arguments.rerun) if arguments.rerun else {}
    for file in files:
        source = Path(file).read_bytes()
        by_line = {int(line): tests for line, tests in measured["lines"][file].items()}
        module_tests = sorted(
            {test for tests in by_line.values() for test in tests}, key=lambda test: seconds.get(test, 0.0)
        )
        module_jobs: list[Job] = []
        for mutant in mutants(file, source):
            previously = before[_key(mutant)]["outcome"] if _key(mutant) in before else None
            if previously == "killed":
                results.append((mutant, "killed"))
                killed_by[_key(mutant)] = before[_key(mutant)].get("killer", "")
                continue
            if previously is not None and arguments.keep_classified and _key(mutant)[:3] in reasons:
                results.append((mutant, previously))
                continue
            end_line = mutant.line + source[mutant.start : mutant.end].count(b"\n")
            lines = [line for line in range(mutant.line, end_line + 1) if line in by_line]
            if not lines and mutant.statement_line in by_line:  # inside a statement over several lines
                lines = [mutant.statement_line]
            tests = sorted({test for line in lines for test in by_line[line]}, key=lambda test: seconds.get(test, 0.0))
            if lines and not tests:  # run only when the module was imported: a constant, a default, a def
                tests = module_tests
            if arguments.only:
                tests = [test for test in tests if any(fnmatch.fnmatch(test, glob) for glob in arguments.only)]
                if not tests and previously is not None:  # no new test covers it: as the previous run left it
                    results.append((mutant, previously))
                    continue
            if not tests:
                uncovered.append(mutant)
                continue
            module_jobs.append(Job(mutant, file, mutant.apply(source), tests, _timeout(tests, seconds)))
        if module_jobs:  # first the unmutated module, against every test its mutants will run: they must pass
            baseline = sorted(
                {test for job in module_jobs for test in job.tests}, key=lambda test: seconds.get(test, 0.0)
            )
            jobs += [Job(None, file, source, baseline, _timeout(baseline, seconds)), *module_jobs]
    print(
        f"{sum(job.mutant is not None for job in jobs)} mutants to run, {len(uncovered)} run by no test, {arguments.workers} workers",
        flush=True,
    )
    results += [(mutant, "no test") for mutant in uncovered]
    progress = Path(arguments.report).with_suffix(".jsonl")
    progress.write_text("")
    with tempfile.TemporaryDirectory() as scratch:
        for done, (job, outcome, killer) in enumerate(outcomes(jobs, arguments.workers, scratch), start=1):
            if job.mutant is None:
                if outcome != "survived":
                    print(
                        f"the unmutated {job.path} fails its tests ({outcome}, {killer}): fix the suite first",
                        file=sys.stderr,
                    )
                    return 1
                continue
            # a collection error, a conftest that no longer imports, a hang: the baseline passed, so the mutant was noticed
            outcome = "killed" if outcome.startswith("error") or outcome == "timeout" else outcome
            if (
                outcome == "survived"
                and arguments.only
                and before.get(_key(job.mutant), {}).get("outcome", "not run") == "not run"
            ):
                outcome = "not run"  # the tests --only left out never ran on it
            results.append((job.mutant, outcome))
            killed_by[_key(job.mutant)] = killer if outcome == "killed" else ""
            with progress.open("a") as kept:  # as it goes, so that a run cut short still says what it found
                kept.write(json.dumps(_entry(job.mutant, outcome, killer)) + "\n")
            print(
                f"[{done}/{len(jobs)}] {outcome:8} {job.mutant.path}:{job.mutant.line} {job.mutant.mutation}  {killer}",
                flush=True,
            )
    results.sort(key=lambda result: (result[0].path, result[0].start, result[0].mutation))
    entries = [_entry(mutant, outcome, killed_by.get(_key(mutant), "")) for mutant, outcome in results]
    Path(arguments.report).with_suffix(".json").write_text(json.dumps(entries, indent=0) + "\n")
    dirty = subprocess.run(["git", "status", "--porcelain", "rxstream"], capture_output=True, text=True).stdout.strip()
    header = [
        "# Mutation testing: the last run",
        "",
        f"`python -m tools.mutate {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        f"on {_commit()}{' (with uncommitted changes)' if dirty else ''}, {time.strftime('%Y-%m-%d', time.gmtime())}, "
        f"{(time.monotonic() - started) / 60:.0f} min.",
    ]
    Path(arguments.report).write_text(_report(header, entries, files, every, classified, before_entries))
    print(f"wrote {arguments.report}")
    return 0


def _measured(
    every: list[str], files: list[str], tests: list[str] | None, ignore: str | None, kept: str | None
) -> dict[str, Any]:
    """Which tests run each line of ``files``: measured (or read from ``kept``), or ``tests`` for every line."""
    if tests:
        lines = {file: {line + 1: tests for line in range(Path(file).read_bytes().count(b"\n") + 1)} for file in files}
        return {"seconds": {}, "lines": lines}
    if kept and Path(kept).exists():
        read: dict[str, Any] = json.loads(Path(kept).read_text())
        return read
    with tempfile.TemporaryDirectory() as scratch:
        out = kept or os.path.join(scratch, "coverage.json")
        print(f"coverage of {len(every)} modules, one context per in-memory test ...", flush=True)
        command = [sys.executable, "-m", "tools.mutate._coverage", out, ignore or "", *every]
        environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=environment)
        measured: dict[str, Any] = json.loads(Path(out).read_text())
        return measured


def _entry(mutant: Mutant, outcome: str, killer: str) -> dict[str, Any]:
    return {
        "module": mutant.path,
        "line": mutant.line,
        "code": mutant.code,
        "mutation": mutant.mutation,
        "occurrence": mutant.occurrence,
        "outcome": outcome,
        "killer": killer,  # the test that failed first ("" when none did, or a run before this driver kept it)
    }


def _key(mutant: Mutant) -> tuple[str, str, str, int]:
    return mutant.path, mutant.code, mutant.mutation, mutant.occurrence


def _entries_in(previous: str) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """What a previous run found for each mutant, by module, source line, mutation and occurrence
    (a results file without occurrences numbers a line written twice in line order)."""
    entries = sorted(json.loads(Path(previous).read_text()), key=lambda entry: entry["line"])
    seen: Counter[tuple[str, str, str]] = Counter()
    found = {}
    for entry in entries:
        key = entry["module"], entry["code"], entry["mutation"]
        found[(*key, entry.get("occurrence", seen[key]))] = entry
        seen[key] += 1
    return found


def _combined(runs: list[str]) -> list[dict[str, Any]]:
    """The entries of several runs' results, each module's from the last run that has it."""
    by_module: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in json.loads(Path(run).read_text()):
            found.setdefault(entry["module"], []).append(entry)
        by_module.update(found)
    return [entry for module in sorted(by_module) for entry in by_module[module]]


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def _timeout(tests: list[str], seconds: dict[str, float]) -> float:
    """Generous: a hang is a kill, but a slow machine must not make one."""
    return 120.0 + 5 * sum(seconds.get(test, 1.0) for test in tests)


def _report(
    header: list[str],
    entries: list[dict[str, Any]],
    files: list[str],
    every: list[str],
    classified: list[dict[str, str]],
    before: list[dict[str, Any]] | None,
) -> str:
    """The report: ``header``, how mutants run, the per-module table (with a score before, given the
    results of a run before the new tests), every survivor with its classification, and which test
    files killed first."""
    out = [
        *header[:-1],
        header[-1] + ' Each mutant runs against the in-memory tests (`pytest -m "not network"`) that '
        "cover its lines (fastest first, stopping at the first failure), with hypothesis derandomized as in the "
        "`ci` profile and at most 25 examples a property.",
        "",
        "Score: killed / (mutants - equivalent). A survivor is *equivalent* (no behaviour changes, or only speed or "
        "memory) or *left* (a real gap, not yet pinned). *Not run*: left alive by the run `--rerun` names, whose "
        "tests did not all run on it, and covered by no test `--only` selects: the score is then a lower bound.",
        "",
        "| module | mutants | killed | survived | run by no test | not run | equivalent | "
        + ("score before | " if before is not None else "")
        + "score |",
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if before is not None else "") + "---:|",
    ]
    by_file, survivors = _counted(entries, files, classified)
    before_counts = _counted(before, files, classified)[0] if before is not None else {}
    totals: Counter[str] = Counter()
    totals_before: Counter[str] = Counter()
    for file, counts in [*by_file.items(), ("**all run**", totals)]:
        if counts is totals:
            counts_before = totals_before
        else:
            counts_before = before_counts.get(file, Counter())
            totals.update(counts)
            totals_before.update(counts_before)
        name = file if counts is totals else f"`{file.removeprefix('rxstream/')}`"
        out.append(
            f"| {name} | {counts['total']} | {counts['killed']} | {counts['survived']} | "
            f"{counts['no test']} | {counts['not run']} | {counts['equivalent']} | "
            + (f"{_score(counts_before)} | " if before is not None else "")
            + f"{_score(counts)} |"
        )
    not_run = [file for file in every if file not in files]
    if not_run:
        out += ["", "Not run this time: " + ", ".join(f"`{file.removeprefix('rxstream/')}`" for file in not_run) + "."]
    out += ["", "## Survivors", "", "| module:line | mutation | code | kind | why |", "|---|---|---|---|---|"]
    for entry, kind, reason in survivors:
        code, mutation = (text.replace("|", "\\|") for text in (entry["code"], entry["mutation"]))
        out.append(
            f"| `{entry['module'].removeprefix('rxstream/')}:{entry['line']}` | `{mutation}` | `{code}` | {kind} | {reason} |"
        )
    return "\n".join(out) + "\n" + _killers(entries)


def _counted(
    entries: list[dict[str, Any]], files: list[str], classified: list[dict[str, str]]
) -> tuple[dict[str, Counter[str]], list[tuple[dict[str, Any], str, str]]]:
    """Each module's count of mutants by outcome and by kind, and the survivors with their kind and reason."""
    reasons = {(entry["module"], entry["code"], entry["mutation"]): entry for entry in classified}
    by_file: dict[str, Counter[str]] = {file: Counter() for file in files}
    survivors: list[tuple[dict[str, Any], str, str]] = []
    for entry in sorted(entries, key=lambda entry: (entry["module"], entry["line"])):
        if entry["module"] not in by_file:
            continue
        counts = by_file[entry["module"]]
        counts[entry["outcome"]] += 1
        counts["total"] += 1
        if entry["outcome"] != "killed":
            reason = reasons.get((entry["module"], entry["code"], entry["mutation"]))
            kind = reason["kind"] if reason else "unclassified"
            counts[kind] += 1
            survivors.append((entry, kind, reason["reason"] if reason else ""))
    return by_file, survivors


def _killers(entries: list[dict[str, Any]]) -> str:
    """Which test file failed first on how many mutants of which module (tests run fastest first)."""
    killers: dict[str, Counter[str]] = {}
    for entry in entries:
        if entry.get("killer"):
            killers.setdefault(entry["killer"].split("::")[0], Counter())[entry["module"]] += 1
    if not killers:
        return ""
    out = ["", "## Killed first by", "", "| test file | mutants killed first, by module |", "|---|---|"]
    for test_file, counts in sorted(killers.items()):
        out.append(
            f"| `{test_file}` | "
            + ", ".join(f"{path.removeprefix('rxstream/')} {n}" for path, n in sorted(counts.items()))
            + " |"
        )
    return "\n".join(out) + "\n"


def _score(counts: Counter[str]) -> str:
    """killed / (mutants - equivalent)."""
    counted = counts["total"] - counts["equivalent"]
    return f"{100 * counts['killed'] / counted:.1f}%" if counted else "-"


if __name__ == "__main__":
    sys.exit(main())
