"""What ``/health`` and ``/health/ready`` report: per-provider state, request totals, readiness.

The numbers are this worker process's (Prometheus ``/metrics`` merges workers):
``/health`` answers "is this process well, and how are its upstreams", the metrics answer
"how is the fleet". Provider state is recorded by the router after each upstream attempt
(only deployment faults count: connection, timeout, 5xx, credentials; never a 4xx or 429),
by the balancer when a breaker opens or closes, and by the cached readiness probes.

A provider's status (docs/observability.md):

* ``down``: it could not start, or its last ``router.circuit_breaker.failures`` attempts all
  failed, or its readiness probe fails and nothing succeeded through it for a while;
* ``degraded``: its last attempt failed, one of its breakers is not closed, or its probe
  fails while requests still succeed;
* ``ok``: otherwise.

Readiness (``/health/ready``) is about this process: configuration loaded (it is, or the
server would not run), every provider made, the state store answering; upstream probes only
when ``server.ready_requires_providers`` asks for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from modelmux.logs import scrub

if TYPE_CHECKING:
    from modelmux.provider import Provider
    from modelmux.stores import StateStore

#: How long one provider's readiness probe may take before it counts as not ready.
READY_TIMEOUT = 5.0
#: Failed attempts in a row that make a provider ``down`` (the router sets the breaker's ``failures``).
DOWN_AFTER = 5
#: With a failing probe, a provider is ``down`` unless something succeeded through it this recently.
PROBE_TRUST_SECONDS = 60.0

Status = Literal["ok", "degraded", "down"]


@dataclass
class ProviderHealth:
    last_success: float | None = None
    last_error: float | None = None
    last_error_message: str | None = None
    successes: int = 0
    failures: int = 0
    #: Deployment faults in a row (a success resets it).
    consecutive_failures: int = 0
    #: "closed" or "open" as the balancer last reported it (``/health`` asks it for half_open).
    circuit: str | None = None
    #: The provider's factory failed at start-up (the message).
    start_error: str | None = None
    #: Last readiness probe: passed or not, when (wall clock), and why not.
    probe_ok: bool | None = None
    probe_at: float | None = None
    probe_detail: str | None = None
    #: The status last published to the ``modelmux_provider_up`` gauge.
    published: Status | None = None

    def status(self, now: float | None = None) -> Status:
        if self.start_error is not None or self.consecutive_failures >= DOWN_AFTER:
            return "down"
        if self.probe_ok is False:
            now = time.time() if now is None else now
            recent = self.last_success is not None and now - self.last_success < PROBE_TRUST_SECONDS
            return "degraded" if recent else "down"
        if self.consecutive_failures or self.circuit not in (None, "closed"):
            return "degraded"
        return "ok"

    def to_dict(self, details: bool) -> dict[str, Any]:
        """The provider's entry in ``/health``; error texts only with ``details`` (an upstream
        may quote request headers or credentials back in its error body)."""
        out: dict[str, Any] = {
            "status": self.status(),
            "error": self.start_error if details else _hidden(self.start_error),
            "last_success": _iso(self.last_success),
            "last_error": _iso(self.last_error),
            "last_error_message": self.last_error_message if details else _hidden(self.last_error_message),
            "successes": self.successes,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "circuit": self.circuit,
        }
        if self.probe_ok is not None:
            out["probe"] = {
                "ok": self.probe_ok,
                "checked_at": _iso(self.probe_at),
                "detail": self.probe_detail if details else _hidden(self.probe_detail),
            }
        return out


#: What ``/health`` shows instead of an error text to a caller without a key.
HIDDEN = "hidden: send a client key (server.api_keys) to see error details"


def _hidden(text: str | None) -> str | None:
    return None if text is None else HIDDEN


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class RequestTotals:
    """API requests (``/v1/...``) answered by this process; 5xx count as failures."""

    total: int = 0
    succeeded: int = 0
    client_errors: int = 0
    failed: int = 0

    def add(self, status: int) -> None:
        self.total += 1
        if status < 400:
            self.succeeded += 1
        elif status < 500:
            self.client_errors += 1
        else:
            self.failed += 1

    def to_dict(self) -> dict[str, Any]:
        served = self.succeeded + self.failed
        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "client_errors": self.client_errors,
            "failed": self.failed,
            # Client mistakes (4xx) say nothing about the gateway's health: left out of the rate.
            "success_rate": round(self.succeeded / served, 4) if served else None,
        }


PROVIDERS: dict[str, ProviderHealth] = {}
REQUESTS = RequestTotals()


def provider_state(name: str) -> ProviderHealth:
    state = PROVIDERS.get(name)
    if state is None:
        state = PROVIDERS[name] = ProviderHealth()
    return state


def reset(names: Iterable[str], start_errors: dict[str, str] | None = None) -> None:
    """A gateway starts with these providers: fresh state, the gauge set for each."""
    for name in names:
        state = PROVIDERS[name] = ProviderHealth()
        if start_errors and name in start_errors:
            state.start_error = start_errors[name]
        _publish(name, state)


def _publish(name: str, state: ProviderHealth) -> None:
    status = state.status()
    if status != state.published:
        state.published = status
        from modelmux import metrics  # metrics imports this module

        metrics.provider_up(name, status != "down")


def record_attempt(provider: str, error: str | None = None) -> None:
    """One upstream attempt ended: accepted (``error`` None) or a deployment fault ``error``."""
    state = provider_state(provider)
    if error is None:
        state.last_success = time.time()
        state.successes += 1
        if state.consecutive_failures or state.published != "ok":  # the hot path: no more than this
            state.consecutive_failures = 0
            _publish(provider, state)
    else:
        state.last_error = time.time()
        # Shown only to callers with a key; scrubbed all the same, an upstream may quote credentials back.
        state.last_error_message = scrub(error[:500])
        state.failures += 1
        state.consecutive_failures += 1
        _publish(provider, state)


def set_circuit(provider: str, circuit: str | None) -> None:
    state = provider_state(provider)
    state.circuit = circuit
    _publish(provider, state)


def record_probe(provider: str, ok: bool, detail: str | None) -> None:
    state = provider_state(provider)
    state.probe_ok, state.probe_at, state.probe_detail = ok, time.time(), detail
    _publish(provider, state)


def overall(statuses: Iterable[Status], circuits_open: bool, process_ok: bool) -> Status:
    """``/health``'s top-level status: ``down`` when this process cannot serve or no provider
    can; ``degraded`` when some provider is not ok or some breaker is not closed."""
    seen = list(statuses)
    if not process_ok or not seen or all(s == "down" for s in seen):
        return "down"
    if circuits_open or any(s != "ok" for s in seen):
        return "degraded"
    return "ok"


@dataclass
class _Probe:
    ok: bool
    detail: str | None
    checked_at: float


@dataclass
class Readiness:
    """Cached probes: each provider's ``ready()`` and the state store's ``ping()``, each at most
    once per ``interval`` however many probes arrive."""

    interval: float
    _probes: dict[str, _Probe] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _due(self, name: str, now: float) -> bool:
        return name not in self._probes or now - self._probes[name].checked_at >= self.interval

    async def check_providers(self, providers: dict[str, Provider]) -> dict[str, str]:
        """Providers whose probe fails, with why (empty: all pass)."""
        async with self._lock:  # one probe round at a time
            now = time.monotonic()
            due = [n for n in providers if self._due(n, now)]
            if due:
                results = await asyncio.gather(*(self._probe(providers[n]) for n in due))
                for name, probe in zip(due, results, strict=True):
                    self._probes[name] = probe
                    record_probe(name, probe.ok, probe.detail)
        return {n: self._probes[n].detail or "not ready" for n in providers if not self._probes[n].ok}

    async def check_state(self, state: StateStore | None) -> str | None:
        """Why the state store does not answer (None: it does, or there is none)."""
        if state is None:
            return None
        async with self._lock:
            if self._due("\0state", time.monotonic()):
                self._probes["\0state"] = await self._probe_state(state)
        probe = self._probes["\0state"]
        return None if probe.ok else probe.detail

    @staticmethod
    async def _probe(provider: Provider) -> _Probe:
        try:
            ok = await asyncio.wait_for(provider.ready(), READY_TIMEOUT)
            detail = None if ok else f"provider {provider.name} is not ready"
        except TimeoutError:
            ok, detail = False, f"provider {provider.name}: readiness check timed out after {READY_TIMEOUT:.0f}s"
        except Exception as exc:
            message = str(getattr(exc, "message", None) or exc)
            # ModelMux's errors already start with "provider NAME: ": say it once.
            named = message.startswith(f"provider {provider.name}")
            ok, detail = False, message if named else f"provider {provider.name}: {message}"
        return _Probe(ok, scrub(detail) if detail else None, time.monotonic())

    @staticmethod
    async def _probe_state(state: StateStore) -> _Probe:
        try:
            await asyncio.wait_for(state.ping(), READY_TIMEOUT)
            return _Probe(True, None, time.monotonic())
        except Exception as exc:
            return _Probe(False, f"state store does not answer: {type(exc).__name__}: {exc}", time.monotonic())
