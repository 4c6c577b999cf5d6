"""One version: the package's, its metadata's, and the changelog's."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import rxstream

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


def test_the_installed_distribution_has_the_package_version() -> None:
    assert version("rxstream") == rxstream.__version__


def test_the_changelog_has_a_section_for_the_version() -> None:
    headings = re.findall(r"^## \[([^\]]+)\]", CHANGELOG.read_text(encoding="utf-8"), re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert rxstream.__version__ in headings
