"""Redis state store and cache for ModelMux (backend name ``redis``)."""

from modelmux_redis.store import RedisSettings, RedisStore, RedisStoreError

__all__ = ["RedisSettings", "RedisStore", "RedisStoreError"]
