"""State stores and caches: the key-value interfaces that backends implement.

A ``StateStore`` keeps stored Responses API conversations and shared counters
(rate limits); a ``Cache`` keeps exact-match response copies. Values are bytes;
keys are strings the host namespaces itself. Backends register through the
``register_state_stores`` / ``register_caches`` hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class StoreSettings(BaseModel):
    """Options every backend accepts; backends subclass it for their own."""

    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int = Field(3600, gt=0, description="default time to live of a key")
    namespace: str = Field(
        "state", description="state or cache: set by the host so one backend can serve both without clashing"
    )


class KeyValueStore(ABC):
    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value, or None when missing or expired."""

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; ``ttl`` seconds (None: the configured default)."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove the key; True when it existed."""

    async def touch(self, key: str, ttl: float | None = None) -> bool:
        """Make an existing key live ``ttl`` seconds from now (None: the configured default);
        False when it is missing. Stored responses keep a continued conversation alive this way.

        This default reads and writes the value again; backends override it with their own
        expiry update (one call, no value transfer). A key deleted between the read and the
        write may come back; backends that can, avoid that."""
        value = await self.get(key)
        if value is None:
            return False
        await self.set(key, value, ttl)
        return True

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The values of ``keys``, in order (None for a missing one). Override with one round trip
        where the backend has it (Redis MGET); the default asks ``get`` for each."""
        return [await self.get(key) for key in keys]

    async def ping(self) -> bool:
        """True when the backend answers (readiness)."""
        await self.get("__modelmux_ping__")
        return True

    async def aclose(self) -> None:
        """Release connections and files."""


class StateStore(KeyValueStore):
    #: Every replica of the gateway that uses this store sees the same keys (Redis, not a process's
    #: memory or one machine's disk): circuit breakers may be shared through it
    #: (``router.circuit_breaker.shared``; docs/guides/routing.md). An optional capability.
    shared: ClassVar[bool] = False

    @abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Atomically add ``amount``; a new key starts at 0 and expires after ``ttl``."""


class Cache(KeyValueStore):
    pass
