"""Circuit breakers shared by replicas through a state store that every replica sees (Redis).

Without it, each replica learns on its own that an upstream is dying, and N replicas send it
N x ``failures`` requests. With it (``router.circuit_breaker.shared``), each deployment's failures
in a row are summed over the replicas, a breaker opened by one replica is taken over by the others,
and so is a 429 cool-down. Closing stays local: each replica sends its own trial request once the
cool-down ends, which a recovered upstream passes.

Nothing is added to the request path: a request only updates its process's counters (as without
sharing) and, on a failure, wakes the background task. That task, once per
``sync_interval_seconds`` (at once after a failure), sends what changed and reads the shared state
of the deployments this process knows (one batched ``get_many``). A state store that does not
answer leaves every replica with its own breakers, with a warning, until it answers again.

Keys (under the store's own prefix): ``breaker:PROVIDER/MODEL:failures`` and ``:volume``
(counters), ``:open`` and ``:limited`` (the wall-clock time the breaker or 429 cool-down ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from loguru import logger

from modelmux.balancing import MAX_STATES, Balancer, DeploymentHealth
from modelmux.config import CircuitBreakerSettings
from modelmux.stores import StateStore

#: Warn about a state store that does not answer at most this often.
WARN_EVERY = 60.0


@dataclass(slots=True)
class _Pending:
    """What one deployment's state did locally since the last push."""

    faults: int = 0
    reset: bool = False
    opened_until: float | None = None  # monotonic
    closed: bool = False
    limited_until: float | None = None  # monotonic


class BreakerSync:
    def __init__(self, balancer: Balancer, store: StateStore, breaker: CircuitBreakerSettings) -> None:
        self.balancer = balancer
        self.store = store
        self.breaker = breaker
        self.interval = breaker.sync_interval_seconds
        self._pending: dict[tuple[str, str], _Pending] = {}
        #: Volume (attempts) each deployment had when its failures were last pushed.
        self._volume_pushed: dict[tuple[str, str], int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._warned = -WARN_EVERY
        #: Rounds run (for tests and the performance page).
        self.rounds = 0

    # --- called by DeploymentHealth, on the event loop, never awaiting -------------------------

    def _p(self, st: DeploymentHealth) -> _Pending:
        p = self._pending.get(st.key)
        if p is None:
            p = self._pending[st.key] = _Pending()
        return p

    def fault(self, st: DeploymentHealth) -> None:
        self._p(st).faults += 1
        self._wake.set()

    def success(self, st: DeploymentHealth) -> None:
        """Only called while the shared count says failures, or this process pushed some."""
        self._p(st).reset = True

    def opened(self, st: DeploymentHealth, until: float) -> None:
        self._p(st).opened_until = until
        self._wake.set()

    def closed(self, st: DeploymentHealth) -> None:
        p = self._p(st)
        p.closed, p.opened_until = True, None

    def limited(self, st: DeploymentHealth, until: float) -> None:
        self._p(st).limited_until = until
        self._wake.set()

    # --- the background task -----------------------------------------------------------------

    def start(self) -> None:
        for st in self.balancer.states().values():
            st.sync = self
        self.balancer.sync = self
        self._task = asyncio.get_running_loop().create_task(self._run(), name="modelmux-breaker-sync")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_pull = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_pull - loop.time()))
            self._wake.clear()
            try:
                await self.push()
                if loop.time() >= next_pull:
                    await self.pull()
                    next_pull = loop.time() + self.interval
            except Exception as exc:  # the store is down: every replica keeps its own breakers
                next_pull = loop.time() + self.interval
                if loop.time() - self._warned >= WARN_EVERY:
                    self._warned = loop.time()
                    logger.warning(
                        "shared circuit breakers: the state store does not answer ({}); each replica "
                        "keeps its own breakers until it does",
                        getattr(exc, "message", None) or exc,
                    )
            self.rounds += 1

    @staticmethod
    def _name(key: tuple[str, str]) -> str:
        return f"breaker:{key[0]}/{key[1]}"

    def _wall(self, mono: float) -> float:
        return time.time() + (mono - self.balancer.clock())

    def _mono(self, wall: float) -> float:
        return self.balancer.clock() + (wall - time.time())

    async def push(self) -> None:
        """Send what changed locally; a failed round keeps it for the next one."""
        pending, self._pending = self._pending, {}
        try:
            for key, p in list(pending.items()):
                await self._push_one(key, p)
                del pending[key]
        finally:
            for key, p in pending.items():  # not sent: merged back into what came meanwhile
                self._merge(key, p)

    def _merge(self, key: tuple[str, str], old: _Pending) -> None:
        new = self._pending.get(key)
        if new is None:
            self._pending[key] = old
            return
        new.faults += old.faults
        new.reset = new.reset or old.reset
        new.closed = new.closed or old.closed
        if new.opened_until is None and not new.closed:
            new.opened_until = old.opened_until
        if old.limited_until is not None:
            new.limited_until = max(new.limited_until or 0.0, old.limited_until)

    async def _push_one(self, key: tuple[str, str], p: _Pending) -> None:
        name = self._name(key)
        st = self.balancer.states().get(key)
        cooldown = self.breaker.cooldown_seconds
        window = max(60.0, 4 * cooldown)  # counts of a deployment nobody calls any more expire
        if p.reset or p.closed:
            await self.store.delete(name + ":failures")
            await self.store.delete(name + ":volume")
            self._volume_pushed.pop(key, None)
            if st is not None:
                st.shared_failures = 0
        if p.closed:
            await self.store.delete(name + ":open")
        if p.faults and st is not None:
            failures = await self.store.incr(name + ":failures", p.faults, ttl=window)
            # The attempts since the last push, failed or not: the request volume min_requests asks for.
            delta = max(p.faults, st.volume_total - self._volume_pushed.get(key, 0))
            if len(self._volume_pushed) >= MAX_STATES:  # states the balancer forgot
                self._volume_pushed.clear()
            self._volume_pushed[key] = st.volume_total
            volume = await self.store.incr(name + ":volume", delta, ttl=window)
            st.shared_failures = failures
            if failures >= self.breaker.failures and volume >= self.breaker.min_requests and not st.opened:
                now = self.balancer.clock()
                st.open_shared(now + cooldown, now, by_fleet=True)
                p.opened_until = st.open_until
        if p.opened_until is not None:
            until = self._wall(p.opened_until)
            await self.store.set(name + ":open", repr(until).encode(), ttl=max(1.0, until - time.time()))
        if p.limited_until is not None:
            until = self._wall(p.limited_until)
            await self.store.set(name + ":limited", repr(until).encode(), ttl=max(1.0, until - time.time()))

    async def pull(self) -> None:
        """Take over what other replicas wrote for the deployments this process knows."""
        states = list(self.balancer.states().values())
        if not states:
            return
        keys = []
        for st in states:
            name = self._name(st.key)
            keys += [name + ":open", name + ":limited", name + ":failures"]
        values = await self.store.get_many(keys)
        now = self.balancer.clock()
        for i, st in enumerate(states):
            opened, limited, failures = values[3 * i : 3 * i + 3]
            if opened is not None:
                st.open_shared(self._mono(float(opened)), now)
            if limited is not None:
                until = self._mono(float(limited))
                if until > st.limited_until:
                    st.limited_until = until
            st.shared_failures = int(failures) if failures is not None else 0
