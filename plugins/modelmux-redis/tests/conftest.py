"""Fixtures for the Redis plugin tests: the real Redis at 127.0.0.1:6379, a unique key
prefix per test (its keys deleted afterwards), and a listener that never answers."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = os.environ.get("MODELMUX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def raw_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def key_prefix(raw_redis: redis.Redis) -> Iterator[str]:
    """A prefix no other test run uses; everything under it is deleted after the test."""
    prefix = f"mmtest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = list(raw_redis.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        raw_redis.delete(*keys)


@pytest.fixture
def acl_user(raw_redis: redis.Redis, key_prefix: str) -> Iterator[tuple[str, str]]:
    """A Redis user with a password, allowed only on this test's keys (removed afterwards)."""
    name, password = f"mmtest-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    raw_redis.execute_command("ACL", "SETUSER", name, "on", f">{password}", f"~{key_prefix}*", "+@all")
    yield name, password
    raw_redis.execute_command("ACL", "DELUSER", name)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word (a hung Redis)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()
