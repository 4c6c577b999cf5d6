"""The recorded real streams are vendored in tests/fixtures/: each file named in the provenance README,
its upstream sha256 where the README gives one, and its repository's licence beside it."""

from __future__ import annotations

import hashlib
import re

from .support import FIXTURES

README = (FIXTURES / "README.md").read_text()


def recordings() -> list[str]:
    return sorted(f"{path.parent.name}/{path.name}" for path in FIXTURES.glob("*/*") if path.name not in {"LICENSE"})


def test_every_recording_is_vendored_with_its_licence_and_provenance() -> None:
    assert len(recordings()) == 8  # the five OpenAI and three Anthropic streams the tests read
    for name in recordings():
        folder, file = name.split("/")
        assert f"## {folder}/" in README and f"`{file}`" in README, f"{name} has no provenance in README.md"
        assert (FIXTURES / folder / "LICENSE").read_text().strip(), f"{folder} has no licence beside it"


def test_recordings_are_the_upstream_bytes_where_the_readme_gives_their_hash() -> None:
    checked = 0
    for row in README.splitlines():
        match = re.match(r"\| `([^`]+)` .*\| ([0-9a-f]{64}) \|", row)
        if match is None:
            continue
        (path,) = FIXTURES.glob(f"*/{match[1]}")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == match[2], f"{path.name} differs from upstream"
        checked += 1
    assert checked == 4  # the rows of the README's tables that carry a sha256
