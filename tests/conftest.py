"""Shared fixtures, and the guard of the fast subset.

Tests not marked ``network`` run in memory: ``pytest -m "not network"`` is the fast subset.

So that a missing mark cannot go unnoticed, a test without it may not bind or connect a
socket, nor start a subprocess: each attempt raises, and the test fails with a message saying
so even if the code under test swallowed the exception. (An event loop's own self-pipe is a
``socketpair``, neither bound nor connected, so in-memory asyncio tests are not affected.)
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings

from .support import FiveOperators, fused, piped

# Property tests are reproducible by default: "ci" derives every example from the test itself (no
# random seed, no example database, no deadline a busy machine could miss), so a red run is red
# again on any machine; .ci/run names it.
# "explore" searches afresh each run, ten times longer, keeping failures in .hypothesis/ to replay:
# pytest -m "not network" --hypothesis-profile=explore
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, derandomize=False)
settings.load_profile("ci")
# The fuzz harnesses' long run (tests/test_fuzz.py): pytest tests/test_fuzz.py --hypothesis-profile=fuzz
settings.register_profile("fuzz", max_examples=20_000, deadline=None)


class UnmarkedNetworkUse(RuntimeError):
    """Not an OSError, so that no retry loop takes it for a failed connection and tries again."""


@pytest.fixture(autouse=True)
def in_memory_unless_marked_network(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """What an unmarked test tried (tests/test_markers.py reads it, to check the refusal)."""
    attempts: list[str] = []
    if request.node.get_closest_marker("network") is not None:
        yield attempts
        return

    def refuse(what: str) -> Any:
        def refused(*args: object, **kwargs: object) -> None:
            attempts.append(what)
            raise UnmarkedNetworkUse(f"{what} in a test not marked network")

        return refused

    for method in ("bind", "connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, method, refuse(f"socket.{method}"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("starting a subprocess"))
    yield attempts
    if attempts:
        pytest.fail(
            f"{request.node.nodeid} is not marked network but tried {', '.join(sorted(set(attempts)))}: "
            'mark it @pytest.mark.network (or its module with pytestmark = pytest.mark.network) so that pytest -m "not network" stays in memory',
            pytrace=False,
        )


@pytest.fixture(params=[piped, fused], ids=["piped", "fused"], scope="session")
def five(request: pytest.FixtureRequest) -> Callable[..., FiveOperators]:
    """The five operators, made from ``rxstream.pipeline``'s arguments: piped one by one, or fused
    (``rxstream.pipeline`` itself, whose fast path takes the plain chunks). A test of the whole
    chain runs both ways, and both must behave alike. (Session-scoped: hypothesis runs a test's
    examples on one fixture value.)"""
    chain: Callable[..., FiveOperators] = request.param
    return chain
