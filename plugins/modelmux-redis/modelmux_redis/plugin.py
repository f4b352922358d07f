"""Hook implementations: ``redis`` as a state store and as a cache."""

from __future__ import annotations

from modelmux import hookimpl
from modelmux.registry import RegisterCache, RegisterStateStore
from modelmux_redis.store import RedisSettings, RedisStore


def _make(settings: RedisSettings) -> RedisStore:
    return RedisStore(settings)


@hookimpl
def register_state_stores(register: RegisterStateStore) -> None:
    register("redis", _make, RedisSettings)


@hookimpl
def register_caches(register: RegisterCache) -> None:
    register("redis", _make, RedisSettings)
