"""What ``/health`` and ``/health/ready`` report: per-provider state, request totals, readiness.

The numbers are this worker process's (Prometheus ``/metrics`` merges workers):
``/health`` answers "is this process well", the metrics answer "how is the fleet".
Provider state is recorded by the router after each upstream attempt; the circuit
state is whatever the resilience layer sets with ``set_circuit``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelmux.logs import scrub

if TYPE_CHECKING:
    from modelmux.provider import Provider
    from modelmux.stores import StateStore

#: How long one provider's readiness probe may take before it counts as not ready.
READY_TIMEOUT = 5.0


@dataclass
class ProviderState:
    last_success: float | None = None
    last_error: float | None = None
    last_error_message: str | None = None
    successes: int = 0
    failures: int = 0
    #: "closed", "open", "half_open" once a circuit breaker reports it; None without one.
    circuit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_success": _iso(self.last_success),
            "last_error": _iso(self.last_error),
            "last_error_message": self.last_error_message,
            "successes": self.successes,
            "failures": self.failures,
            "circuit": self.circuit,
        }


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


PROVIDERS: dict[str, ProviderState] = {}
REQUESTS = RequestTotals()


def provider_state(name: str) -> ProviderState:
    state = PROVIDERS.get(name)
    if state is None:
        state = PROVIDERS[name] = ProviderState()
    return state


def record_attempt(provider: str, error: str | None = None) -> None:
    """One upstream attempt ended: accepted (``error`` None) or failed with ``error``."""
    state = provider_state(provider)
    if error is None:
        state.last_success = time.time()
        state.successes += 1
    else:
        state.last_error = time.time()
        # /health is open to anyone who reaches it: an upstream may quote credentials back.
        state.last_error_message = scrub(error[:500])
        state.failures += 1


def set_circuit(provider: str, circuit: str | None) -> None:
    provider_state(provider).circuit = circuit


@dataclass
class _Probe:
    ok: bool
    detail: str | None
    checked_at: float


@dataclass
class Readiness:
    """Cached readiness probes: each provider's ``ready()`` at most once per ``interval``."""

    interval: float
    _probes: dict[str, _Probe] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def check(self, providers: dict[str, Provider], state: StateStore | None) -> dict[str, str]:
        """Problems by name (empty: ready)."""
        async with self._lock:  # one probe round at a time, however many probes arrive
            now = time.monotonic()
            due = [n for n in providers if n not in self._probes or now - self._probes[n].checked_at >= self.interval]
            if due:
                results = await asyncio.gather(*(self._probe(providers[n]) for n in due))
                for name, probe in zip(due, results, strict=True):
                    self._probes[name] = probe
            if state is not None and (
                "state" not in self._probes or now - self._probes["state"].checked_at >= self.interval
            ):
                self._probes["state"] = await self._probe_state(state)
        return {name: p.detail or "not ready" for name, p in self._probes.items() if not p.ok}

    @staticmethod
    async def _probe(provider: Provider) -> _Probe:
        try:
            ok = await asyncio.wait_for(provider.ready(), READY_TIMEOUT)
            detail = None if ok else f"provider {provider.name} is not ready"
        except TimeoutError:
            ok, detail = False, f"provider {provider.name}: readiness check timed out after {READY_TIMEOUT:.0f}s"
        except Exception as exc:
            ok, detail = False, f"provider {provider.name}: {getattr(exc, 'message', None) or exc}"
        return _Probe(ok, detail, time.monotonic())

    @staticmethod
    async def _probe_state(state: StateStore) -> _Probe:
        try:
            await asyncio.wait_for(state.ping(), READY_TIMEOUT)
            return _Probe(True, None, time.monotonic())
        except Exception as exc:
            return _Probe(False, f"state store does not answer: {type(exc).__name__}: {exc}", time.monotonic())
