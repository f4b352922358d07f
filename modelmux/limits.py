"""Client rate limits per API key: requests per minute and tokens per minute.

Counters live in the state store (``StateStore.incr``), so replicas that share a
store (Redis; or one disk directory on one machine) share the limits. Each limit is a
sliding window estimated from two fixed one-minute counters (the current minute, and
the previous one weighted by how much of it still overlaps the last 60 s), which is
exact enough and costs two counter calls.

Requests are counted when admitted; tokens are charged after the answer, from the
usage the upstream reported, and a key whose recent tokens reached its limit is
refused until the window slides. A refused request does not use up quota; the 429
carries ``retry-after``. Without ``server.api_keys`` every client shares one
``anonymous`` budget. If the store fails, requests are let through (and logged):
the limits protect upstreams, they must not take the gateway down.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from modelmux.config import LimitSettings
from modelmux.errors import RateLimitError
from modelmux.stores import StateStore

WINDOW = 60
TTL = 2 * WINDOW + 5
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Limit:
    requests_per_minute: int | None
    tokens_per_minute: int | None


class RateLimiter:
    def __init__(self, settings: LimitSettings, store: StateStore, key_ids: dict[str, str]) -> None:
        """``key_ids`` maps each client API key to its non-secret id (``gateway.key_id``)."""
        self._store = store
        self._default = Limit(settings.requests_per_minute, settings.tokens_per_minute)
        self._per_key: dict[str, Limit] = {}
        for override in settings.keys.values():
            kid = key_ids.get(override.api_key)
            if kid is not None:
                self._per_key[kid] = Limit(
                    override.requests_per_minute
                    if override.requests_per_minute is not None
                    else self._default.requests_per_minute,
                    override.tokens_per_minute
                    if override.tokens_per_minute is not None
                    else self._default.tokens_per_minute,
                )
        self.enabled = any(
            v is not None
            for lim in (self._default, *self._per_key.values())
            for v in (lim.requests_per_minute, lim.tokens_per_minute)
        )

    def counts_tokens(self, key_id: str | None) -> bool:
        return self.enabled and self.limit_for(key_id or ANONYMOUS).tokens_per_minute is not None

    def limit_for(self, key_id: str | None) -> Limit:
        return self._per_key.get(key_id or ANONYMOUS, self._default)

    async def admit(self, key_id: str | None) -> None:
        """Count one request for ``key_id``, or raise a 429 ``RateLimitError``."""
        if not self.enabled:
            return
        kid = key_id or ANONYMOUS
        limit = self.limit_for(kid)
        now = time.time()
        try:
            if limit.tokens_per_minute is not None:
                used, wait = await self._estimate(f"ratelimit:{kid}:tok", 0, limit.tokens_per_minute, now)
                if used >= limit.tokens_per_minute:
                    raise _limited(f"tokens per minute ({limit.tokens_per_minute})", kid, wait)
            if limit.requests_per_minute is not None:
                name = f"ratelimit:{kid}:req"
                used, wait = await self._estimate(name, 1, limit.requests_per_minute, now)
                if used > limit.requests_per_minute:
                    await self._store.incr(f"{name}:{int(now // WINDOW)}", -1, TTL)  # refused: not counted
                    raise _limited(f"requests per minute ({limit.requests_per_minute})", kid, wait)
        except RateLimitError:
            raise
        except Exception as exc:
            logger.warning("rate limit store failed, letting the request through: {}", exc)

    async def charge(self, key_id: str | None, usage: dict[str, object] | None) -> None:
        """Add the tokens an answer used to ``key_id``'s window."""
        if not self.enabled or not usage:
            return
        kid = key_id or ANONYMOUS
        if self.limit_for(kid).tokens_per_minute is None:
            return
        total = usage.get("total_tokens")
        if not isinstance(total, int):
            parts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")]
            total = sum(p for p in parts if isinstance(p, int))
        if total <= 0:
            return
        try:
            await self._store.incr(f"ratelimit:{kid}:tok:{int(time.time() // WINDOW)}", total, TTL)
        except Exception as exc:
            logger.warning("rate limit store failed, tokens not counted: {}", exc)

    async def charged(
        self, frames: AsyncIterator[bytes], key_id: str | None, usage: Callable[[], dict[str, Any] | None]
    ) -> AsyncIterator[bytes]:
        """``frames`` unchanged; once they ended, ``usage()`` is charged to ``key_id``."""
        try:
            async for frame in frames:
                yield frame
        finally:
            await self.charge(key_id, usage())

    async def _estimate(self, name: str, add: int, limit: int, now: float) -> tuple[float, float]:
        """Add ``add`` to this minute; the sliding 60 s estimate after it, and the seconds until
        there is room again for one more unit."""
        window = int(now // WINDOW)
        current = await self._store.incr(f"{name}:{window}", add, TTL)
        previous = await self._store.incr(f"{name}:{window - 1}", 0, TTL)
        into = (now % WINDOW) / WINDOW
        used = previous * (1 - into) + current
        return used, room_in(previous, current - add, limit, into) * WINDOW


def room_in(previous: int, current: int, limit: int, into: float) -> float:
    """Fraction of a window until ``previous * (1 - x) + current + 1 <= limit`` holds again,
    ``into`` being how far the current window has run (both windows slide on)."""
    if current + 1 <= limit:
        if previous <= 0:
            return 0.0
        needed = 1 - (limit - current - 1) / previous
        if needed <= 1:
            return max(0.0, needed - into)
    # Not this window: next window, where this one's count becomes the previous.
    needed = 1 - (limit - 1) / current if current > 0 else 0.0
    return (1 - into) + max(0.0, needed)


def _limited(what: str, kid: str, wait: float) -> RateLimitError:
    return RateLimitError(
        f"Rate limit reached for {kid}: {what}. Retry after {math.ceil(wait)} s, or ask for a higher limit "
        "(server.limits).",
        retry_after=max(1.0, math.ceil(wait)),
    )
