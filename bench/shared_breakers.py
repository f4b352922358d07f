"""What shared circuit breakers cost (docs/performance.md, "Shared breaker state").

    .venv/bin/python bench/shared_breakers.py [--redis redis://127.0.0.1:6379/0]

1. The request path: one attempt's ``begin()`` + ``finish("ok")`` on a deployment's state, with
   sharing off and on (on: a sync object attached, no failures pending), in ns per attempt.
2. The background task against a real Redis: one pull round (a batched read of every known
   deployment's state) for 10, 100 and 1,000 deployments, and one push of a new failure, in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from modelmux.balancing import Balancer, Deployment
from modelmux.breaker_sync import BreakerSync
from modelmux.config import CircuitBreakerSettings
from modelmux.stores import StateStore


def per_attempt_ns(shared: StateStore | None, n: int = 200_000) -> float:
    balancer = Balancer(CircuitBreakerSettings())
    if shared is not None:
        balancer.sync = BreakerSync(balancer, shared, CircuitBreakerSettings())
    st = balancer.state(Deployment("p", "m", "m"))
    clock = time.monotonic
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(n):
            trial = st.begin(clock())
            st.finish("ok", clock(), trial)
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


async def rounds(url: str) -> dict[str, float]:
    from modelmux_redis.settings import RedisSettings
    from modelmux_redis.store import RedisStore

    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    store = RedisStore(RedisSettings(url=url, key_prefix=prefix, namespace="state"))
    out: dict[str, float] = {}
    try:
        for count in (10, 100, 1000):
            balancer = Balancer(CircuitBreakerSettings())
            sync = BreakerSync(balancer, store, CircuitBreakerSettings())
            for i in range(count):
                balancer.state(Deployment("p", f"m{i}", f"m{i}")).sync = sync
            times = []
            for _ in range(50):
                start = time.perf_counter()
                await sync.pull()
                times.append(time.perf_counter() - start)
            out[f"pull, {count} deployments"] = statistics.median(times) * 1000
        balancer = Balancer(CircuitBreakerSettings())
        sync = BreakerSync(balancer, store, CircuitBreakerSettings())
        balancer.sync = sync
        st = balancer.state(Deployment("p", "push", "push"))
        times = []
        for _ in range(50):
            st.begin(balancer.clock())
            st.finish("fault", balancer.clock())
            start = time.perf_counter()
            await sync.push()
            times.append(time.perf_counter() - start)
            st.failures = 0  # stay below the threshold: measure the counting push alone
            await store.delete("breaker:p/push:failures")
        out["push of one failure"] = statistics.median(times) * 1000
    finally:
        keys = [k async for k in store._redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await store._redis.delete(*keys)
        await store.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    class _Unused(StateStore):  # never called on the request path: that is the point
        async def get(self, key: str) -> bytes | None:
            raise AssertionError

        async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
            raise AssertionError

        async def delete(self, key: str) -> bool:
            raise AssertionError

        async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
            raise AssertionError

    off, on = per_attempt_ns(None), per_attempt_ns(_Unused())
    print(f"request path, begin + finish per attempt: sharing off {off:.0f} ns, on {on:.0f} ns")
    for name, ms in asyncio.run(rounds(args.redis)).items():
        print(f"background task, {name}: {ms:.3f} ms (median of 50)")


if __name__ == "__main__":
    main()
