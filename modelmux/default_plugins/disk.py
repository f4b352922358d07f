"""The ``disk`` state store and cache on diskcache (SQLite): persistent, and safe
with several worker processes. Calls run in a thread so the event loop never blocks.

diskcache culls at most ten entries per write (a burst of large values then overshoots
``size_limit`` for good), and its ``cull()`` removes ten at a time (the value just written
among them). So the store turns diskcache's culling off and, after a write that leaves
the directory over its limit, evicts one entry at a time, least recently stored first,
until it is back under."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pydantic import Field

from modelmux import hookimpl
from modelmux.config import default_data_dir
from modelmux.registry import RegisterCache, RegisterStateStore
from modelmux.stores import Cache, StateStore, StoreSettings


class DiskSettings(StoreSettings):
    """On local disk (diskcache, SQLite): survives restarts, shared by the workers of one machine."""

    path: str | None = Field(
        None,
        description="directory; unset: $XDG_DATA_HOME/modelmux/state (or /cache), i.e. ~/.local/share/modelmux/...",
    )
    size_limit_bytes: int = Field(
        1024 * 1024 * 1024, gt=0, description="total size on disk; the least recently stored entries go first"
    )


class DiskStore(StateStore, Cache):
    def __init__(self, settings: DiskSettings) -> None:
        self.settings = settings
        directory = Path(settings.path).expanduser() if settings.path else default_data_dir() / settings.namespace
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        import diskcache  # here, not at discovery: only a disk-backed store needs it

        self._cache = diskcache.Cache(
            str(directory),
            size_limit=settings.size_limit_bytes,
            eviction_policy="least-recently-stored",
            cull_limit=0,  # culling is _make_room's
        )

    def _ttl(self, ttl: float | None) -> float:
        return ttl if ttl is not None else self.settings.ttl_seconds

    async def get(self, key: str) -> bytes | None:
        value = await asyncio.to_thread(self._cache.get, key)
        return value if isinstance(value, bytes) else None

    def _make_room(self) -> None:
        cache = self._cache
        cache.expire()  # what diskcache's per-write cull also did: expired entries go first
        while cache.volume() > self.settings.size_limit_bytes:
            count = len(cache)
            # diskcache's own one-batch cull with a batch of one: an expired entry, else the oldest stored
            with cache._transact(retry=True) as (sql, cleanup):
                cache._cull(time.time(), sql, cleanup, 1)
            if len(cache) == count:
                break  # nothing left to evict

    def _set(self, key: str, value: bytes, ttl: float) -> None:
        self._cache.set(key, value, expire=ttl)
        self._make_room()

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await asyncio.to_thread(self._set, key, value, self._ttl(ttl))

    async def touch(self, key: str, ttl: float | None = None) -> bool:
        return bool(await asyncio.to_thread(self._cache.touch, key, self._ttl(ttl)))

    async def delete(self, key: str) -> bool:
        return bool(await asyncio.to_thread(self._cache.delete, key))

    def _incr(self, key: str, amount: int, ttl: float) -> int:
        self._cache.add(key, 0, expire=ttl)  # atomic: only when missing, so the first writer sets the TTL
        try:
            return int(self._cache.incr(key, amount, default=None))
        except KeyError:  # expired between add and incr
            self._cache.set(key, amount, expire=ttl)
            return amount

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return await asyncio.to_thread(self._incr, key, amount, self._ttl(ttl))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._cache.close)


def _make(settings: DiskSettings) -> DiskStore:
    return DiskStore(settings)


@hookimpl
def register_state_stores(register: RegisterStateStore) -> None:
    register("disk", _make, DiskSettings)


@hookimpl
def register_caches(register: RegisterCache) -> None:
    register("disk", _make, DiskSettings)
