"""Which deployment of a model gets the next request: balancing and circuit breakers.

Each deployment (provider + upstream model) has one ``DeploymentState`` per process,
shared by every model that names it: its requests in flight and its circuit breaker.
A breaker opens after ``failures`` retryable failures in a row (connection, timeout,
429, 5xx, a stream cut mid-way); while open, the deployment is skipped for
``cooldown_seconds``; then one trial request is let through (half-open): success
closes the breaker, failure opens it for another cool-down.

``order()`` ranks a model's usable deployments for one request: the first is the
strategy's pick (smooth weighted round robin, or fewest requests in flight per unit
of weight), the rest follow as alternatives when the pick fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

from loguru import logger

from modelmux.config import CircuitBreakerSettings, Strategy

#: Deployment states kept before idle ones are dropped. Model names a client makes up reach a
#: ``router.default_provider`` as deployments of their own; without a bound, each would keep a
#: state for the life of the process.
MAX_STATES = 1024


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    model: str
    #: The configured model name this deployment serves (for labels and fallbacks).
    route: str
    weight: int = 1


@dataclass(slots=True)
class DeploymentState:
    key: tuple[str, str]
    breaker: CircuitBreakerSettings
    inflight: int = 0
    failures: int = 0
    open_until: float = 0.0
    trial_running: bool = False
    #: Told after every change, so ``/health`` can show the provider's circuit.
    on_change: Callable[[str], None] | None = None

    def usable(self, now: float) -> bool:
        if self.failures < self.breaker.failures:
            return True
        return now >= self.open_until and not self.trial_running

    def begin(self, now: float) -> None:
        """An attempt starts; past the cool-down it is the trial request."""
        self.inflight += 1
        if self.failures >= self.breaker.failures and now >= self.open_until:
            self.trial_running = True
            if self.on_change is not None:
                self.on_change(self.key[0])

    def finish(self, outcome: bool | None) -> None:
        """The attempt ended: True healthy, False a deployment failure, None says nothing."""
        self.inflight -= 1
        was_trial, self.trial_running = self.trial_running, False
        if outcome is True:
            if self.failures >= self.breaker.failures:
                logger.info("deployment {}/{} is back: circuit closed", *self.key)
            self.failures = 0
        elif outcome is False:
            self.failures += 1
            if self.failures >= self.breaker.failures:
                self.open_until = time.monotonic() + self.breaker.cooldown_seconds
                if was_trial or self.failures == self.breaker.failures:
                    logger.warning(
                        "deployment {}/{} failed {} times in a row: circuit open for {:g} s",
                        *self.key,
                        self.failures,
                        self.breaker.cooldown_seconds,
                    )
        if self.on_change is not None:
            self.on_change(self.key[0])

    @property
    def is_open(self) -> bool:
        return self.failures >= self.breaker.failures


@dataclass(slots=True)
class _Wrr:
    """Smooth weighted round robin (as nginx): even spread, exact proportions."""

    current: dict[tuple[str, str], int] = field(default_factory=dict)


class Balancer:
    def __init__(self, breaker: CircuitBreakerSettings, report: Callable[[str, str], None] | None = None) -> None:
        """``report(provider, circuit)`` hears the provider's circuit after each change:
        "open" while one of its deployments cools down, "half_open" while one awaits or runs
        its trial request, else "closed"."""
        self._breaker = breaker
        self._states: dict[tuple[str, str], DeploymentState] = {}
        self._wrr: dict[str, _Wrr] = {}
        self._ticks = count()
        self._report = report

    def state(self, dep: Deployment) -> DeploymentState:
        key = (dep.provider, dep.model)
        st = self._states.get(key)
        if st is None:
            if len(self._states) >= MAX_STATES:
                self._forget_idle()
            st = self._states[key] = DeploymentState(key, self._breaker, on_change=self._changed)
        return st

    def _forget_idle(self) -> None:
        """Drops the states with nothing in flight whose breaker is closed or done cooling down.

        A state with no requests and no failures is what a new one would be, so forgetting it
        changes nothing; one that counts a few failures, or whose cool-down is over, starts
        afresh if its deployment comes back. Open breakers still cooling down are kept.
        """
        now = time.monotonic()
        idle = [
            key
            for key, st in self._states.items()
            if st.inflight == 0 and not st.trial_running and (not st.is_open or now >= st.open_until)
        ]
        providers = {key[0] for key in idle if self._states[key].is_open}
        for key in idle:
            del self._states[key]
        for provider in providers:
            self._changed(provider)

    def circuit(self, provider: str) -> str:
        now = time.monotonic()
        states = [st for key, st in self._states.items() if key[0] == provider and st.is_open]
        if any(now < st.open_until and not st.trial_running for st in states):
            return "open"
        return "half_open" if states else "closed"

    def _changed(self, provider: str) -> None:
        if self._report is not None:
            self._report(provider, self.circuit(provider))

    def states(self) -> dict[tuple[str, str], DeploymentState]:
        return self._states

    def order(self, route: str, deployments: list[Deployment], strategy: Strategy) -> list[Deployment]:
        """The usable deployments of one model, best first (empty: all are cooling down)."""
        now = time.monotonic()
        usable = [d for d in deployments if self.state(d).usable(now)]
        if len(usable) <= 1:
            return usable
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

    def retry_in(self, deployments: list[Deployment]) -> float:
        """Seconds until the first of these deployments leaves its cool-down."""
        now = time.monotonic()
        waits = [self.state(d).open_until - now for d in deployments]
        return max(0.0, min(waits, default=0.0))
