"""Hook implementations: ``redis`` as a state store and as a cache.

Discovery imports this module in every ``modelmux`` process, so it stays light:
redis-py is imported when a redis store is made. A missing redis-py still fails
here, where discovery reports it.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING

from modelmux.plugin import RegisterCache, RegisterStateStore, hookimpl
from modelmux_redis.settings import RedisSettings

if TYPE_CHECKING:
    from modelmux_redis.store import RedisStore

if find_spec("redis") is None:  # not installed: fail now, with import's own error, so discovery reports it
    import redis  # noqa: F401


def _make(settings: RedisSettings) -> RedisStore:
    from modelmux_redis.store import RedisStore

    return RedisStore(settings)


@hookimpl
def register_state_stores(register: RegisterStateStore) -> None:
    register("redis", _make, RedisSettings)


@hookimpl
def register_caches(register: RegisterCache) -> None:
    register("redis", _make, RedisSettings)
