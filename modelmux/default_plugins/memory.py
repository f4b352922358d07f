"""The ``memory`` state store and cache: per process, TTL and size bound, LRU eviction."""

from __future__ import annotations

import time
from collections import OrderedDict

from pydantic import Field

from modelmux.plugin import Cache, RegisterCache, RegisterStateStore, StateStore, StoreSettings, hookimpl


class MemorySettings(StoreSettings):
    """In the process: one per worker, lost on restart."""

    max_items: int = Field(10_000, gt=0, description="entries kept; the least recently used go first")
    max_bytes: int = Field(256 * 1024 * 1024, gt=0, description="total size of the values kept")


class MemoryStore(StateStore, Cache):
    """Not shared between workers or replicas; lost on restart."""

    def __init__(self, settings: MemorySettings) -> None:
        self.settings = settings
        self._data: OrderedDict[str, tuple[float, bytes | int]] = OrderedDict()
        self._bytes = 0

    def _live(self, key: str) -> bytes | int | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= time.monotonic():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return value

    def _drop(self, key: str) -> bool:
        item = self._data.pop(key, None)
        if item is None:
            return False
        if isinstance(item[1], bytes):
            self._bytes -= len(item[1])
        return True

    def _put(self, key: str, value: bytes | int, ttl: float | None) -> None:
        self._drop(key)
        expires = time.monotonic() + (ttl if ttl is not None else self.settings.ttl_seconds)
        self._data[key] = (expires, value)
        if isinstance(value, bytes):
            self._bytes += len(value)
        while len(self._data) > self.settings.max_items or self._bytes > self.settings.max_bytes:
            oldest = next(iter(self._data))
            self._drop(oldest)

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._put(key, value, ttl)

    async def delete(self, key: str) -> bool:
        return self._live(key) is not None and self._drop(key)

    async def touch(self, key: str, ttl: float | None = None) -> bool:
        value = self._live(key)
        if value is None:
            return False
        expires = time.monotonic() + (ttl if ttl is not None else self.settings.ttl_seconds)
        self._data[key] = (expires, value)
        return True

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        current = self._live(key)
        if isinstance(current, int):
            expires = self._data[key][0]
            value = current + amount
            self._data[key] = (expires, value)
            return value
        self._put(key, amount, ttl)
        return amount


def _make(settings: MemorySettings) -> MemoryStore:
    return MemoryStore(settings)


@hookimpl
def register_state_stores(register: RegisterStateStore) -> None:
    register("memory", _make, MemorySettings)


@hookimpl
def register_caches(register: RegisterCache) -> None:
    register("memory", _make, MemorySettings)
