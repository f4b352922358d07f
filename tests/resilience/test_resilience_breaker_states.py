"""The breaker's state machine, transition by transition, on a clock the test moves
(docs/guides/routing.md has the diagram these tests follow)."""

from __future__ import annotations

import pytest

from modelmux.balancing import Balancer, Deployment, DeploymentHealth, Outcome
from modelmux.config import CircuitBreakerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**kw: float) -> CircuitBreakerSettings:
    settings = {"failures": 2, "min_requests": 1, "cooldown_seconds": 10.0, **kw}
    return CircuitBreakerSettings.model_validate(settings)


def attempt(st: DeploymentHealth, outcome: Outcome, now: float) -> bool:
    """One attempt through the state; whether it was the trial request."""
    trial = st.begin(now)
    st.finish(outcome, now, trial)
    return trial


def test_closed_counts_faults_in_a_row_and_a_success_resets_them() -> None:
    st = DeploymentHealth(("p", "m"), breaker(failures=3))
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    assert (st.circuit(0), st.failures) == ("closed", 2)
    attempt(st, "ok", 0)
    assert (st.circuit(0), st.failures) == ("closed", 0)
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    assert st.circuit(0) == "closed"


def test_answers_about_the_request_are_neutral() -> None:
    """A 4xx or 429 (outcome None) neither counts nor resets the faults in a row."""
    st = DeploymentHealth(("p", "m"), breaker(failures=2))
    attempt(st, "fault", 0)
    for _ in range(10):
        attempt(st, None, 0)
    assert (st.circuit(0), st.failures) == ("closed", 1)
    attempt(st, "fault", 0)
    assert st.circuit(0) == "open"


def test_closed_opens_at_the_threshold_only_with_the_minimum_volume() -> None:
    st = DeploymentHealth(("p", "m"), breaker(failures=2, min_requests=4))
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    assert st.circuit(0) == "closed", "3 attempts are fewer than min_requests"
    attempt(st, "fault", 0)
    assert st.circuit(0) == "open" and st.open_until == 10.0


def test_open_skips_then_turns_half_open_when_the_cooldown_ends() -> None:
    st = DeploymentHealth(("p", "m"), breaker())
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    assert st.circuit(9.9) == "open" and st.skipped(9.9)
    assert st.circuit(10.0) == "half_open" and not st.skipped(10.0)


def test_half_open_lets_one_trial_through_and_its_success_closes() -> None:
    st = DeploymentHealth(("p", "m"), breaker())
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    assert st.begin(11) is True, "the first attempt after the cool-down is the trial"
    assert st.skipped(11), "while the trial runs, others keep away"
    st.finish("ok", 11, True)
    assert (st.circuit(11), st.failures, st.volume) == ("closed", 0, 0)


def test_a_failed_trial_opens_for_another_cooldown() -> None:
    st = DeploymentHealth(("p", "m"), breaker())
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    assert attempt(st, "fault", 12) is True
    assert st.circuit(12) == "open" and st.open_until == 22.0 and not st.trial_running


def test_a_neutral_trial_leaves_it_half_open_for_the_next_request() -> None:
    st = DeploymentHealth(("p", "m"), breaker())
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    assert attempt(st, None, 12) is True
    assert st.circuit(12) == "half_open" and not st.skipped(12)
    assert st.begin(12) is True


def test_an_attempt_made_anyway_while_open_closes_on_success_and_extends_on_failure() -> None:
    st = DeploymentHealth(("p", "m"), breaker())
    attempt(st, "fault", 0)
    attempt(st, "fault", 0)
    assert attempt(st, "fault", 5) is False, "inside the cool-down: not a trial"
    assert st.open_until == 15.0
    attempt(st, "ok", 6)
    assert st.circuit(6) == "closed"


def test_a_429_cooldown_skips_for_the_time_asked_capped() -> None:
    st = DeploymentHealth(("p", "m"), breaker(max_retry_after_seconds=30))
    st.rate_limited(5, 0)
    assert st.skipped(4.9) and not st.skipped(5.0)
    assert st.circuit(1) == "closed" and st.failures == 0
    st.rate_limited(3600, 100)
    assert st.ready_at() == 130.0


def test_another_replica_opening_the_breaker_is_taken_over() -> None:
    st = DeploymentHealth(("p", "m"), breaker())
    assert st.open_shared(20, 0) is True
    assert st.circuit(5) == "open" and st.circuit(20) == "half_open"
    assert st.open_shared(15, 0) is False, "an earlier end changes nothing"
    assert st.open_shared(-1, 0) is False


def deps(*names: str, route: str = "m") -> list[Deployment]:
    return [Deployment(n, "x", route) for n in names]


def eject(balancer: Balancer, dep: Deployment, now: float) -> None:
    st = balancer.state(dep)
    attempt(st, "fault", now)
    attempt(st, "fault", now)
    assert st.circuit(now) == "open"


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_single_deployment_without_fallback_is_never_skipped(clock: Clock) -> None:
    b = Balancer(breaker(), clock=clock)
    (only,) = deps("a")
    eject(b, only, clock.now)
    plan = b.order_chain([("m", [only], "weighted_round_robin")])
    assert plan.orders == [[only]] and plan.forced == {only}
    b.state(only).rate_limited(60, clock.now)
    assert b.order_chain([("m", [only], "weighted_round_robin")]).orders == [[only]]


def test_one_of_two_deployments_down_is_skipped(clock: Clock) -> None:
    b = Balancer(breaker(), clock=clock)
    a, c = deps("a", "c")
    eject(b, a, clock.now)
    for _ in range(5):
        assert b.order_chain([("m", [a, c], "weighted_round_robin")]).orders == [[c]]
    clock.now += 10  # cool-down over: half-open, a is back in the rotation for its trial
    assert a in b.order_chain([("m", [a, c], "weighted_round_robin")]).orders[0]


def test_the_ejection_cap_tries_the_soonest_back_after_the_healthy_ones(clock: Clock) -> None:
    b = Balancer(breaker(), clock=clock)
    a, c, d = deps("a", "c", "d")
    eject(b, a, clock.now)
    clock.now += 1
    eject(b, c, clock.now)  # 2 of 3 open: 67% > 50%, so a (back sooner) is tried anyway
    plan = b.order_chain([("m", [a, c, d], "weighted_round_robin")])
    assert plan.orders == [[d, a]] and plan.forced == {a} and plan.skipped == 2


def test_panic_mode_when_every_way_is_ejected(clock: Clock) -> None:
    b = Balancer(breaker(max_ejection_percent=100), clock=clock)
    a, c = deps("a", "c")
    eject(b, c, clock.now)
    clock.now += 1
    eject(b, a, clock.now)
    plan = b.order_chain([("m", [a, c], "weighted_round_robin")])
    assert plan.orders == [[c]], "the one whose cool-down ends soonest"


def test_a_model_with_one_deployment_and_a_fallback_skips_to_the_fallback(clock: Clock) -> None:
    b = Balancer(breaker(), clock=clock)
    (a,) = deps("a", route="m")
    (f,) = deps("f", route="fb")
    eject(b, a, clock.now)
    plan = b.order_chain([("m", [a], "weighted_round_robin"), ("fb", [f], "weighted_round_robin")])
    assert plan.orders == [[], [f]]
    eject(b, f, clock.now + 1)  # both ejected: the soonest back is tried
    plan = b.order_chain([("m", [a], "weighted_round_robin"), ("fb", [f], "weighted_round_robin")])
    assert plan.orders == [[a], []]


def test_the_provider_circuit_summary_and_reports_only_on_changes(clock: Clock) -> None:
    reports: list[tuple[str, str]] = []
    b = Balancer(breaker(), report=lambda p, c: reports.append((p, c)), clock=clock)
    a, a2 = Deployment("a", "x", "m"), Deployment("a", "y", "n")
    attempt(b.state(a2), "ok", clock.now)
    assert b.circuit("a") == "closed" and reports == []
    eject(b, a, clock.now)
    assert b.circuit("a") == "open" and reports == [("a", "open")]
    clock.now += 10
    assert b.circuit("a") == "half_open"
    attempt(b.state(a), "ok", clock.now)
    assert b.circuit("a") == "closed" and reports == [("a", "open"), ("a", "closed")]
