"""The balancer's per-deployment state stays bounded when clients invent model names.

With ``router.default_provider`` set, every model name a client sends becomes a deployment of
its own; the balancer must not keep one state per name forever.
"""

from __future__ import annotations

import time

from modelmux.balancing import MAX_STATES, Balancer, Deployment, Outcome
from modelmux.config import CircuitBreakerSettings


def served(balancer: Balancer, dep: Deployment, outcome: Outcome = "ok") -> None:
    state = balancer.state(dep)
    trial = state.begin(time.monotonic())
    state.finish(outcome, time.monotonic(), trial)


def test_states_of_finished_requests_to_many_made_up_models_stay_bounded() -> None:
    balancer = Balancer(CircuitBreakerSettings())
    for i in range(5 * MAX_STATES):
        served(balancer, Deployment("default", f"made-up-{i}", f"made-up-{i}"))
    assert len(balancer.states()) <= MAX_STATES


def test_requests_in_flight_and_open_circuits_are_kept_while_idle_states_go() -> None:
    breaker = CircuitBreakerSettings(failures=1, min_requests=1, cooldown_seconds=60)
    circuits: dict[str, str] = {}
    balancer = Balancer(breaker, report=lambda provider, circuit: circuits.__setitem__(provider, circuit))
    busy = Deployment("default", "busy", "busy")
    broken = Deployment("flaky", "broken", "broken")
    balancer.state(busy).begin(time.monotonic())
    served(balancer, broken, outcome="fault")
    assert circuits["flaky"] == "open"
    for i in range(2 * MAX_STATES):
        served(balancer, Deployment("default", f"made-up-{i}", f"made-up-{i}"))
    states = balancer.states()
    assert len(states) <= MAX_STATES
    assert states[("default", "busy")].inflight == 1
    assert not states[("flaky", "broken")].usable(time.monotonic()), "the open breaker still cools down"
    assert circuits["flaky"] == "open"
