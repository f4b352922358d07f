"""The built-in plugins pass the same contract suites as any third-party plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelmux.default_plugins.disk import DiskSettings, DiskStore
from modelmux.default_plugins.memory import MemorySettings, MemoryStore
from modelmux.stores import StateStore
from modelmux.testing import CacheContract, ProviderContract, StateStoreContract


class TestEchoProvider(ProviderContract):
    """Made by the ``provider`` fixture of modelmux.testing from the table, as the gateway makes it."""

    embedding_model = "echo"

    @pytest.fixture
    def provider_config(self) -> dict[str, Any]:
        return {"type": "echo"}


class TestMemoryStateStore(StateStoreContract):
    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"backend": "memory", "ttl_seconds": 60}


class TestMemoryCache(CacheContract):
    @pytest.fixture
    def cache_config(self) -> dict[str, Any]:
        return {"backend": "memory", "ttl_seconds": 60}


class TestDiskStateStore(StateStoreContract):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"backend": "disk", "ttl_seconds": 60, "path": str(tmp_path)}


class TestDiskCache(CacheContract):
    @pytest.fixture
    def cache_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"backend": "disk", "ttl_seconds": 60, "path": str(tmp_path)}


class _MinimalStore(StateStore):
    """A third-party store that implements only the abstract methods (touch uses the base default)."""

    def __init__(self) -> None:
        self.inner = MemoryStore(MemorySettings(ttl_seconds=60))

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.inner.set(key, value, ttl)

    async def delete(self, key: str) -> bool:
        return await self.inner.delete(key)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return await self.inner.incr(key, amount, ttl)


class TestMinimalThirdPartyStateStore(StateStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[StateStore]:
        yield _MinimalStore()


def _bytes_on_disk(directory: Path) -> int:
    """The database and value files (SQLite's -wal and -shm files are not part of the limit)."""
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file() and not f.name.endswith(("-wal", "-shm")))


async def test_disk_store_stays_under_its_size_limit_after_many_large_writes(tmp_path: Path) -> None:
    """diskcache alone culls at most 10 entries per write; the store culls until under the limit."""
    limit = 2 * 1024 * 1024
    store = DiskStore(DiskSettings(path=str(tmp_path), size_limit_bytes=limit))
    try:
        # Many small entries, then large ones (as a history that repeats itself writes): culling
        # ten small entries per write frees far less than each large write adds.
        for i in range(400):
            await store.set(f"small{i}", b"s" * 4_000)
        for i in range(12):
            await store.set(f"large{i}", bytes([i]) * 400_000)
            assert store._cache.volume() <= limit, f"over the limit after large write {i}"
        assert _bytes_on_disk(tmp_path) <= limit
        assert await store.get("large11") == bytes([11]) * 400_000  # the newest survive
        assert await store.get("small0") is None  # the oldest went first
    finally:
        await store.aclose()


async def test_memory_store_evicts_least_recently_used_beyond_its_bound() -> None:
    store = MemoryStore(MemorySettings(max_items=3))
    for i in range(3):
        await store.set(f"k{i}", b"v")
    await store.get("k0")  # k0 is now the most recently used
    await store.set("k3", b"v")
    assert await store.get("k1") is None
    assert [await store.get(k) for k in ("k0", "k2", "k3")] == [b"v", b"v", b"v"]


async def test_memory_store_is_bounded_in_bytes() -> None:
    store = MemoryStore(MemorySettings(max_bytes=100))
    await store.set("a", b"x" * 60)
    await store.set("b", b"x" * 60)
    assert await store.get("a") is None and await store.get("b") == b"x" * 60


def test_disk_store_is_shared_between_processes(tmp_path: Path) -> None:
    """Several workers share one directory: a value written by one process is read by another."""
    import subprocess
    import sys

    code = (
        "import asyncio,sys;from modelmux.default_plugins.disk import DiskStore,DiskSettings;"
        f"s=DiskStore(DiskSettings(path={str(tmp_path)!r}));"
        "asyncio.run(s.incr('n',1,ttl=60)) if sys.argv[1]=='w' else print(asyncio.run(s.incr('n',0)))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, "w"]) for _ in range(4)]
    assert all(p.wait(30) == 0 for p in procs)
    out = subprocess.run([sys.executable, "-c", code, "r"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4"
