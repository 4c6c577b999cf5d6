"""The servers some tests need, PostgreSQL and Redis: where they are, and what to do when one is not there.

Each is found at the URL in its environment variable (or a default on 127.0.0.1). A test that
needs an unreachable one is skipped, saying how to point it at one; under
``RXSTREAM_REQUIRE_SERVICES=1`` (as .ci/run sets) it fails instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Service:
    name: str
    variable: str
    default: str

    @property
    def url(self) -> str:
        return os.environ.get(self.variable) or self.default

    def unavailable(self, reason: str) -> None:
        message = (
            f"{self.name} at {self.url} is not reachable ({reason}): start it, or set {self.variable} "
            f"to the URL of one (a scratch database: each test makes its own schema or key prefix and removes it)"
        )
        missing(message)


def missing(message: str) -> None:
    """Skip the test, saying what is missing; under RXSTREAM_REQUIRE_SERVICES=1 fail it instead."""
    if os.environ.get("RXSTREAM_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}; RXSTREAM_REQUIRE_SERVICES=1 makes this a failure", pytrace=False)
    pytest.skip(message)


POSTGRES = Service("PostgreSQL", "RXSTREAM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = Service("Redis", "RXSTREAM_TEST_REDIS", "redis://127.0.0.1:6379/0")


@functools.cache
def postgres_problem() -> str | None:
    """Why the test server cannot be used (None if it can): asked once a test process."""
    import psycopg

    try:
        psycopg.connect(POSTGRES.url, connect_timeout=5).close()
    except psycopg.Error as error:
        return " ".join(str(error).split())
    return None


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A new, empty schema's name on the test server, dropped with all it holds afterwards."""
    import psycopg
    from psycopg import sql

    problem = postgres_problem()
    if problem is not None:
        POSTGRES.unavailable(problem)
    schema = f"rxstream_test_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        with psycopg.connect(POSTGRES.url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of the test's own on the Redis at RXSTREAM_TEST_REDIS; its keys are deleted afterwards."""
    import redis.asyncio

    client = redis.asyncio.from_url(REDIS.url)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as error:
        await client.aclose()
        REDIS.unavailable(" ".join(str(error).split()))
    prefix = f"rxstream-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
