"""Fixtures for the file_search plugin's tests: a real gateway with the echo provider's
embeddings (deterministic: texts sharing words point the same way), the real Redis at
127.0.0.1:6379 under a unique key prefix (its keys deleted afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

REDIS_URL = os.environ.get("MODELMUX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
KEY = f"sk-fs-{uuid.uuid4().hex}"
OTHER = f"sk-fs-other-{uuid.uuid4().hex}"


def _gateway_config(tmp: Path, **file_search: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [KEY, OTHER]},
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo"}},
        "tools": {"file_search": {"embedding_model": "echo", "path": str(tmp / "fs.sqlite3"), **file_search}},
    }


@pytest.fixture(scope="session")
def keys() -> tuple[str, str]:
    """Two client keys of the gateways these tests run: each key sees only its own files and stores."""
    return KEY, OTHER


@pytest.fixture(scope="session")
def gateway_config() -> Callable[..., dict[str, Any]]:
    """``gateway_config(tmp_dir, **file_search_settings)``: echo provider and model ``echo``,
    ``[tools.file_search]`` embedding with it into a SQLite file in ``tmp_dir``."""
    return _gateway_config


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A prefix no other test run uses; everything under it is deleted after the test."""
    prefix = f"mmtest:fs:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
