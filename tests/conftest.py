"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .support import FiveOperators, fused, piped


@pytest.fixture(params=[piped, fused], ids=["piped", "fused"], scope="session")
def five(request: pytest.FixtureRequest) -> Callable[..., FiveOperators]:
    """The five operators, made from ``rxstream.pipeline``'s arguments: piped one by one, or fused
    (``rxstream.pipeline`` itself, whose fast path takes the plain chunks). A test of the whole
    chain runs both ways, and both must behave alike. (Session-scoped: hypothesis runs a test's
    examples on one fixture value.)"""
    chain: Callable[..., FiveOperators] = request.param
    return chain
