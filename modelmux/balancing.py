"""Which deployment of a model gets the next request: balancing, circuit breakers, cool-downs.

Each deployment (provider + upstream model) has one ``DeploymentHealth`` per process, shared by
every model that names it: its requests in flight, its circuit breaker and its 429 cool-down.

The breaker of a deployment (docs/guides/routing.md has the diagram)::

    closed --(failures in a row >= failures, and attempts >= min_requests)--> open
    open --(cooldown_seconds pass)--> half_open --(its one trial request succeeds)--> closed
    half_open --(the trial fails)--> open (another cool-down)
    open --(an attempt made anyway, panic or share cap, succeeds)--> closed

Only deployment faults count (``ModelMuxError.deployment_fault``: connection refused or cut,
timeout, 5xx, credentials or token refused); an answer about the request (4xx, 429) is neutral.
A 429 with ``retry-after`` instead puts the deployment in a cool-down of that length (set by the
router only when the request had another way to an answer).

``order_chain()`` never takes away a request's last way to an answer. Over every deployment of a model
and its fallbacks, at most ``max_ejection_percent`` may be skipped (open, trial running, or
cooling down after a 429); the ones beyond that share, whose cool-down ends soonest, are tried
anyway after the healthy ones. If every way is skipped (possible with ``max_ejection_percent =
100``), the one whose cool-down ends soonest is tried: panic mode, as Envoy's. So a model with one
deployment and no fallback is never refused by its breaker.

``order()`` ranks a model's healthy deployments: the strategy's pick first (smooth weighted round
robin, or fewest requests in flight per unit of weight), the rest as alternatives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Literal

from loguru import logger

from modelmux.config import CircuitBreakerSettings, Strategy

if TYPE_CHECKING:
    from modelmux.breaker_sync import BreakerSync

#: Deployment states kept before idle ones are dropped. Model names a client makes up reach a
#: ``router.default_provider`` as deployments of their own; without a bound, each would keep a
#: state for the life of the process.
MAX_STATES = 1024

Circuit = Literal["closed", "open", "half_open"]
#: How an attempt ended for the breaker: "ok", "fault" (counts), or None (says nothing).
Outcome = Literal["ok", "fault"] | None


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    model: str
    #: The configured model name this deployment serves (for labels and fallbacks).
    route: str
    weight: int = 1


@dataclass(slots=True)
class DeploymentHealth:
    key: tuple[str, str]
    breaker: CircuitBreakerSettings
    inflight: int = 0
    #: Deployment faults in a row (a success resets it; 4xx and 429 leave it alone).
    failures: int = 0
    #: Attempts since the breaker last closed (or since start): the request volume it judges on.
    volume: int = 0
    #: The breaker is not closed: open until ``open_until``, half-open after it.
    opened: bool = False
    open_until: float = 0.0
    trial_running: bool = False
    #: End of the cool-down a 429's ``retry-after`` asked for.
    limited_until: float = 0.0
    #: Told when the breaker opens or closes (not on every request), with the provider's name.
    on_change: Callable[[str], None] | None = None
    #: With shared breakers (``router.circuit_breaker.shared``): told of failures, openings,
    #: closings and cool-downs; None otherwise, so sharing costs nothing when it is off.
    sync: BreakerSync | None = None
    #: Failures in a row summed over the replicas, as last read or written (shared breakers).
    shared_failures: int = 0
    #: Attempts since start, never reset (the request volume shared breakers report).
    volume_total: int = 0

    def circuit(self, now: float) -> Circuit:
        if not self.opened:
            return "closed"
        return "open" if now < self.open_until else "half_open"

    def skipped(self, now: float) -> bool:
        """Whether a request with another way to an answer should leave this deployment alone."""
        if now < self.limited_until:
            return True
        if not self.opened:
            return False
        return now < self.open_until or self.trial_running

    def usable(self, now: float) -> bool:
        return not self.skipped(now)

    def ready_at(self) -> float:
        """When this deployment stops being skipped (for the soonest-first pick of panic mode)."""
        return max(self.open_until if self.opened else 0.0, self.limited_until)

    def begin(self, now: float) -> bool:
        """An attempt starts; True when it is the half-open breaker's trial request."""
        self.inflight += 1
        if self.opened and now >= self.open_until and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def finish(self, outcome: Outcome, now: float, trial: bool = False) -> None:
        """The attempt begun with ``begin()`` (which said ``trial``) ended with ``outcome``."""
        self.inflight -= 1
        if trial:
            self.trial_running = False
        self.volume += 1
        self.volume_total += 1
        sync = self.sync
        if outcome == "ok":
            self.failures = 0
            if sync is not None and self.shared_failures:
                sync.success(self)
            if self.opened:
                self.opened = False
                self.volume = 0
                logger.info("deployment {}/{} is back: circuit closed", *self.key)
                if sync is not None:
                    sync.closed(self)
                self._changed()
        elif outcome == "fault":
            self.failures += 1
            if sync is not None:
                sync.fault(self)
            if self.opened:
                # A trial, or an attempt made anyway (panic): another cool-down from now.
                self.open_until = now + self.breaker.cooldown_seconds
                if sync is not None:
                    sync.opened(self, self.open_until)
                if trial:
                    logger.warning(
                        "deployment {}/{}: trial request failed, circuit open for another {:g} s",
                        *self.key,
                        self.breaker.cooldown_seconds,
                    )
            elif self.failures >= self.breaker.failures and self.volume >= self.breaker.min_requests:
                self.opened = True
                self.open_until = now + self.breaker.cooldown_seconds
                logger.warning(
                    "deployment {}/{} failed {} times in a row: circuit open for {:g} s",
                    *self.key,
                    self.failures,
                    self.breaker.cooldown_seconds,
                )
                if sync is not None:
                    sync.opened(self, self.open_until)
                self._changed()

    def rate_limited(self, seconds: float, now: float) -> None:
        """A 429 asked for ``seconds`` (capped by ``max_retry_after_seconds``) of rest."""
        until = now + min(seconds, self.breaker.max_retry_after_seconds)
        if until > self.limited_until:
            self.limited_until = until
            if self.sync is not None:
                self.sync.limited(self, until)

    def open_shared(self, until: float, now: float, by_fleet: bool = False) -> bool:
        """Another replica opened this breaker until ``until`` (local monotonic time), or
        (``by_fleet``) the replicas' failures added up to the threshold."""
        if until <= now or (self.opened and self.open_until >= until):
            return False
        was_open, self.opened, self.open_until = self.opened, True, until
        if not was_open:
            if by_fleet:
                logger.warning(
                    "deployment {}/{} failed {} times in a row across replicas: circuit open for {:g} s",
                    *self.key,
                    self.shared_failures,
                    until - now,
                )
            else:
                logger.warning(
                    "deployment {}/{}: circuit opened by another replica for {:.3g} s", *self.key, until - now
                )
            self._changed()
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.key[0])

    @property
    def is_open(self) -> bool:
        return self.opened


@dataclass(slots=True)
class _Wrr:
    """Smooth weighted round robin (as nginx): even spread, exact proportions."""

    current: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(slots=True)
class ChainOrder:
    """What one request may try: per model of its chain, the healthy deployments (balanced) and
    those tried anyway because skipping them would exceed the ejection cap or leave nothing."""

    #: Per model of the chain, in chain order: the deployments to try, best first.
    orders: list[list[Deployment]]
    #: How many deployments were skipped (breaker open, trial running, or 429 cool-down).
    skipped: int
    #: Deployments tried although skipped: past the ejection cap, or panic.
    forced: set[Deployment]
    #: Every distinct deployment of the chain.
    ways: int


class Balancer:
    def __init__(
        self,
        breaker: CircuitBreakerSettings,
        report: Callable[[str, Circuit], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``report(provider, circuit)`` hears a provider's circuit after one of its breakers opens
        or closes: "open" while one of its deployments is not closed, else "closed"."""
        self._breaker = breaker
        self._states: dict[tuple[str, str], DeploymentHealth] = {}
        self._wrr: dict[str, _Wrr] = {}
        self._ticks = count()
        self._report = report
        self.clock = clock
        self._panic_logged: dict[str, float] = {}
        #: Shared breakers, when on: every state made from now on reports to it.
        self.sync: BreakerSync | None = None

    def state(self, dep: Deployment) -> DeploymentHealth:
        key = (dep.provider, dep.model)
        st = self._states.get(key)
        if st is None:
            if len(self._states) >= MAX_STATES:
                self._forget_idle()
            st = self._states[key] = DeploymentHealth(key, self._breaker, on_change=self._changed, sync=self.sync)
        return st

    def _forget_idle(self) -> None:
        """Drops the states with nothing in flight whose breaker is closed or done cooling down.

        A state with no requests and no failures is what a new one would be, so forgetting it
        changes nothing; one that counts a few failures, or whose cool-down is over, starts
        afresh if its deployment comes back. Open breakers still cooling down are kept.
        """
        now = self.clock()
        idle = [
            key
            for key, st in self._states.items()
            if st.inflight == 0 and not st.trial_running and now >= st.ready_at()
        ]
        providers = {key[0] for key in idle if self._states[key].opened}
        for key in idle:
            del self._states[key]
        for provider in providers:
            self._changed(provider)

    def circuit(self, provider: str) -> Circuit:
        """The provider's worst circuit: "open" if one of its deployments cools down, "half_open"
        if one waits for or runs its trial request, else "closed"."""
        now = self.clock()
        worst: Circuit = "closed"
        for key, st in self._states.items():
            if key[0] == provider and st.opened:
                c = st.circuit(now)
                if c == "open":
                    return "open"
                worst = c
        return worst

    def _changed(self, provider: str) -> None:
        if self._report is not None:
            opened = any(st.opened for key, st in self._states.items() if key[0] == provider)
            self._report(provider, "open" if opened else "closed")

    def states(self) -> dict[tuple[str, str], DeploymentHealth]:
        return self._states

    def order_chain(self, chain: list[tuple[str, list[Deployment], Strategy]]) -> ChainOrder:
        """What one request may try, model by model of its chain (a model, then its fallbacks)."""
        now = self.clock()
        seen: set[Deployment] = set()
        skipped: list[Deployment] = []
        for _, deps, _ in chain:
            for d in deps:
                if d not in seen:
                    seen.add(d)
                    if self.state(d).skipped(now):
                        skipped.append(d)
        ways = len(seen)
        forced: set[Deployment] = set()
        if not skipped:  # the usual case: every deployment may be tried, each model balanced
            return ChainOrder([self.order(route, deps, strategy) for route, deps, strategy in chain], 0, forced, ways)
        cap = math.floor(ways * self._breaker.max_ejection_percent / 100 + 1e-9)
        cap = min(cap, ways - 1)  # never every way: panic mode tries the soonest back
        extra = len(skipped) - cap
        if extra > 0:
            soonest = sorted(skipped, key=lambda d: self.state(d).ready_at())
            forced = set(soonest[:extra])
            if len(skipped) == ways:
                self._panic(chain[0][0], soonest[0], now)
        skip = set(skipped) - forced
        orders = []
        for route, deps, strategy in chain:
            healthy = [d for d in deps if d not in skip and d not in forced]
            tried_anyway = sorted((d for d in deps if d in forced), key=lambda d: self.state(d).ready_at())
            orders.append(self.order(route, healthy, strategy) + tried_anyway)
        return ChainOrder(orders, len(skipped), forced, ways)

    def _panic(self, route: str, dep: Deployment, now: float) -> None:
        """Logs panic mode, at most once per cool-down per model (it may last many requests)."""
        if now < self._panic_logged.get(route, -math.inf):
            return
        if len(self._panic_logged) >= MAX_STATES:
            self._panic_logged.clear()
        self._panic_logged[route] = now + self._breaker.cooldown_seconds
        logger.warning(
            "panic mode for {}: every deployment and fallback is ejected or cooling down; "
            "trying {}/{} (back soonest) anyway",
            route,
            dep.provider,
            dep.model,
        )

    def order(self, route: str, deployments: list[Deployment], strategy: Strategy) -> list[Deployment]:
        """These (healthy) deployments of one model, best first."""
        usable = deployments
        if len(usable) <= 1:
            return list(usable)
        if strategy == "least_inflight":
            # Rotate the start so that ties (e.g. all idle) still spread the load.
            shift = next(self._ticks) % len(usable)
            rotated = usable[shift:] + usable[:shift]
            return sorted(rotated, key=lambda d: self.state(d).inflight / d.weight)
        wrr = self._wrr.setdefault(route, _Wrr())
        total = 0
        best: Deployment | None = None
        for d in usable:
            key = (d.provider, d.model)
            wrr.current[key] = wrr.current.get(key, 0) + d.weight
            total += d.weight
            if best is None or wrr.current[key] > wrr.current[(best.provider, best.model)]:
                best = d
        assert best is not None
        wrr.current[(best.provider, best.model)] -= total
        rest = sorted((d for d in usable if d is not best), key=lambda d: -d.weight)
        return [best, *rest]
