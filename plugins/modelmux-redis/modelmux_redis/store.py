"""The ``redis`` state store and cache on redis-py's asyncio client.

One store object serves either ``[state]`` or ``[cache]``; its keys are
``<key_prefix><namespace>:<key>`` so both can share one Redis database (and
several ModelMux deployments can share one Redis with different prefixes).
Counters (rate limits shared by replicas) are ``SET NX PX`` + ``INCRBY`` in one
MULTI/EXEC transaction: atomic, and the TTL is set only when the key is created.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from modelmux.plugin import Cache, ModelMuxError, StateStore, redact
from modelmux_redis.settings import RedisSettings


class RedisStoreError(ModelMuxError):
    """Redis did not answer or refused a command: 503, the message names the URL (password masked) and the fix."""

    status_code = 503
    default_code = "store_unavailable"


class RedisStore(StateStore, Cache):
    """Shared by every worker and replica that points at the same Redis and prefix."""

    #: Every replica sees the same keys: circuit breakers may be shared through this store.
    shared = True

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.prefix = settings.prefix
        self._where = redact(settings.url, "url")
        pool = aioredis.BlockingConnectionPool.from_url(settings.url, **settings.client_options())
        # Values are bytes both ways: no decoding.
        self._redis = aioredis.Redis(connection_pool=pool)
        logger.info("redis {} store at {} (keys {}*)", settings.namespace, self._where, self.prefix)

    @asynccontextmanager
    async def _guard(self, op: str) -> AsyncIterator[None]:
        try:
            yield
        except RedisError as exc:
            raise RedisStoreError(
                f"redis {self.settings.namespace} store at {self._where}: {op} failed: "
                f"{type(exc).__name__}: {str(exc).rstrip('.')}. Fix: check that Redis is running and reachable, and "
                f"{self.settings.namespace}.url (host, port, password, rediss:// for TLS)."
            ) from exc

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _ttl_ms(self, ttl: float | None) -> int:
        seconds = ttl if ttl is not None else self.settings.ttl_seconds
        return max(1, int(seconds * 1000))

    async def get(self, key: str) -> bytes | None:
        async with self._guard("GET"):
            value = await self._redis.get(self._key(key))
        return value if isinstance(value, bytes) else None

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """One MGET (the shared circuit breakers read every deployment's state at once)."""
        if not keys:
            return []
        async with self._guard("MGET"):
            values = await self._redis.mget([self._key(k) for k in keys])
        return [v if isinstance(v, bytes) else None for v in values]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        async with self._guard("SET"):
            await self._redis.set(self._key(key), value, px=self._ttl_ms(ttl))

    async def delete(self, key: str) -> bool:
        async with self._guard("DEL"):
            return bool(await self._redis.delete(self._key(key)))

    async def touch(self, key: str, ttl: float | None = None) -> bool:
        async with self._guard("PEXPIRE"):
            return bool(await self._redis.pexpire(self._key(key), self._ttl_ms(ttl)))

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        name = self._key(key)
        async with self._guard("INCRBY"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(name, 0, nx=True, px=self._ttl_ms(ttl))  # only a new key gets the TTL
                pipe.incrby(name, amount)
                _, value = await pipe.execute()
        return int(value)

    async def ping(self) -> bool:
        async with self._guard("PING"):
            return bool(await self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose(close_connection_pool=True)
