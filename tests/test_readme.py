"""Every Python example in the README runs as written, but those marked as needing a real endpoint, and prints
exactly what the README says it prints (the ```text block after "It prints:"; nothing, when there is none)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_errors import drawn_tree, exception_tree

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
# Each example with what follows it: the output the README shows, or "" when it shows none.
PRINTING = re.findall(
    r"```python\n(.*?)```\n(?:\nIt prints:\n\n```text\n(.*?)```\n)?", README.read_text(encoding="utf-8"), re.DOTALL
)


@pytest.mark.network
@pytest.mark.parametrize(
    ("example", "printed"),
    [(example, printed) for example, printed in PRINTING if not example.startswith("# needs a real endpoint")],
    ids=lambda e: e.splitlines()[0][:40] if "\n" in e else "",
)
def test_readme_example_prints_what_the_readme_says(example: str, printed: str, tmp_path: Path) -> None:
    # 120 s: the testing example draws 200 disordered streams with hypothesis.
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == printed.rstrip("\n")


def test_every_example_is_checked() -> None:
    assert [example for example, _ in PRINTING] == EXAMPLES


def test_the_readme_draws_the_exception_tree_as_it_is() -> None:
    assert drawn_tree(README.read_text(encoding="utf-8")) == list(exception_tree())


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.network
@pytest.mark.parametrize("script", sorted((README.parent / "examples").glob("*.py")), ids=lambda p: p.name)
def test_example_scripts_run(script: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
