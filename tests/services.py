"""The services some tests need (PostgreSQL, Redis): where they are, and a skip or a failure without them.

Without a server a test skips, saying how to point it at one; with ``RXSTREAM_REQUIRE_SERVICES=1``
(``.ci/run`` sets it) it fails instead, so that CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

REDIS_URL = os.environ.get("RXSTREAM_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unavailable(service: str, variable: str, detail: str) -> None:
    """Skip the test (fail it under RXSTREAM_REQUIRE_SERVICES=1): ``service`` cannot be used."""
    message = f"{service} unavailable ({detail}): set {variable} to a server's URL"
    if os.environ.get("RXSTREAM_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (RXSTREAM_REQUIRE_SERVICES=1 requires it)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of the test's own on the Redis at RXSTREAM_TEST_REDIS; its keys are deleted afterwards."""
    redis_asyncio = pytest.importorskip("redis.asyncio")
    client = redis_asyncio.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        unavailable("Redis", "RXSTREAM_TEST_REDIS", f"{REDIS_URL}: {error}")
    prefix = f"rxstream-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
