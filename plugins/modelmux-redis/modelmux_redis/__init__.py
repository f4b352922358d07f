"""Redis state store and cache for ModelMux (backend name ``redis``).

The store (and with it redis-py) is imported on first use, not by plugin discovery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelmux_redis.settings import RedisSettings

if TYPE_CHECKING:
    from modelmux_redis.store import RedisStore, RedisStoreError

__all__ = ["RedisSettings", "RedisStore", "RedisStoreError"]


def __getattr__(name: str) -> Any:
    if name in ("RedisStore", "RedisStoreError"):
        from modelmux_redis import store

        return getattr(store, name)
    raise AttributeError(name)
