"""Never less available than the upstreams, against a real ``modelmux serve`` and fake upstreams:
429 bursts, 500s and cuts on a model's only deployment never turn into a gateway-made 503; one
dead provider of three leaves the gateway ready and the others serving; a dead deployment of two
is skipped and tried again after its cool-down; panic mode when every deployment is ejected."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
from aiohttp import web

from modelmux.testing import LoopbackServer, serve_aiohttp
from modelmux.testing.faults import Fault, FaultyUpstream

MESSAGES = [{"role": "user", "content": "alpha beta"}]


async def _models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "x", "object": "model", "owned_by": "fake"}]})


@pytest.fixture
def fakes() -> Iterator[Callable[[], tuple[FaultyUpstream, LoopbackServer]]]:
    """Fault-injecting upstreams that also answer the readiness probe (GET /v1/models)."""
    with contextlib.ExitStack() as stack:

        def start() -> tuple[FaultyUpstream, LoopbackServer]:
            up = FaultyUpstream()
            return up, stack.enter_context(serve_aiohttp(up.app([web.get("/v1/models", _models)])))

        yield start


def toml(providers: dict[str, str], models: str, breaker: str = "", server: str = "") -> str:
    text = f'[server]\nready_check_interval_seconds = 0\n{server}\n[state]\nbackend = "memory"\n'
    text += f"[router.circuit_breaker]\n{breaker}\n"
    for name, url in providers.items():
        text += f'[providers.{name}]\ntype = "openai_compatible"\nbase_url = "{url}"\nmax_retries = 0\n'
    return text + models


def client(root: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{root}/v1", api_key="x", max_retries=0, timeout=30)


def statuses(c: openai.OpenAI, n: int, model: str = "m", stream: bool = False) -> list[int]:
    seen = []
    for _ in range(n):
        try:
            if stream:
                chunks = list(c.chat.completions.create(model=model, messages=MESSAGES, stream=True))
                assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "alpha beta"
            else:
                c.chat.completions.create(model=model, messages=MESSAGES)
            seen.append(200)
        except openai.APIStatusError as exc:
            assert "cooling down" not in exc.message
            seen.append(exc.status_code)
        except openai.APIConnectionError:
            seen.append(0)  # a stream cut after it started: the client sees the cut, as from the upstream
    return seen


def test_429s_500s_and_cuts_on_a_single_deployment_never_become_a_gateway_503(fakes, serve) -> None:
    up, srv = fakes()
    gw = serve(
        toml(
            {"solo": srv.url + "/v1"},
            '[models.m]\nprovider = "solo"\nmodel = "x"\n',
            "failures = 2\nmin_requests = 1\ncooldown_seconds = 60\n",
        )
    )
    c = client(gw.root)
    up.plan(*[Fault.error(429, retry_after=30)] * 6, *[Fault.error(429)] * 6)
    assert statuses(c, 12) == [429] * 12, "the upstream's own 429s, passed on"
    assert statuses(c, 3) == [200] * 3, "served at once: a 429 never opens the breaker"
    up.plan(*[Fault.error(500)] * 4)
    assert statuses(c, 4) == [502] * 4, "the upstream's 500s as 502s, each one sent upstream"
    assert httpx.get(f"{gw.root}/health").json()["providers"]["solo"]["circuit"] == "open"
    assert statuses(c, 2) == [200, 200], "an open breaker never refuses a model's only way"
    up.plan(Fault.drop(after_chunks=0), Fault.drop(after_chunks=0), Fault.drop(after_chunks=0))
    assert 503 not in statuses(c, 3, stream=True)
    assert statuses(c, 2, stream=True) == [200, 200]
    assert up.attempts == 12 + 3 + 4 + 2 + 3 + 2


def test_one_dead_provider_of_three_leaves_the_gateway_ready_and_the_others_serving(fakes, serve, refused_url) -> None:
    _a, a_srv = fakes()
    _b, b_srv = fakes()
    models = "".join(
        f'[models.{m}]\nprovider = "{p}"\nmodel = "x"\n' for m, p in (("ma", "a"), ("mb", "b"), ("mdead", "dead"))
    )
    gw = serve(toml({"a": a_srv.url + "/v1", "b": b_srv.url + "/v1", "dead": refused_url}, models))
    ready = httpx.get(f"{gw.root}/health/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    c = client(gw.root)
    for _ in range(6):
        assert statuses(c, 1, "ma") == [200] and statuses(c, 1, "mb") == [200]
        assert statuses(c, 1, "mdead") == [502]
    assert httpx.get(f"{gw.root}/health/ready").status_code == 200
    health = httpx.get(f"{gw.root}/health").json()
    assert health["status"] == "degraded"
    assert {n: p["status"] for n, p in health["providers"].items()} == {"a": "ok", "b": "ok", "dead": "down"}
    dead = health["providers"]["dead"]
    assert dead["consecutive_failures"] == 6 and dead["probe"]["ok"] is False
    assert "cannot connect" in dead["last_error_message"]  # loopback server without keys: details shown
    metrics = httpx.get(f"{gw.root}/metrics").text
    assert 'modelmux_provider_up{provider="dead"} 0.0' in metrics
    assert 'modelmux_provider_up{provider="a"} 1.0' in metrics
    assert "/health/ready" not in gw.log.read_text().replace("DEBUG", "")  # probes log at DEBUG only


def test_two_deployments_one_dead_500_requests_all_succeed_and_the_dead_one_is_retried_after_its_cooldown(
    fakes, serve
) -> None:
    _good, good_srv = fakes()
    dead, dead_srv = fakes()
    dead.default = Fault.error(500)
    models = (
        '[models.m]\ndeployments = [{provider = "dead", model = "x"}, {provider = "good", model = "y"}]\n'
        'strategy = "least_inflight"\n'
    )
    gw = serve(
        toml(
            {"dead": dead_srv.url + "/v1", "good": good_srv.url + "/v1"},
            models,
            "failures = 3\nmin_requests = 3\ncooldown_seconds = 1.0\n",
        )
    )

    async def burst(n: int) -> Counter[int]:
        async with openai.AsyncOpenAI(base_url=f"{gw.root}/v1", api_key="x", max_retries=0, timeout=30) as ac:
            sem = asyncio.Semaphore(20)

            async def one() -> int:
                async with sem:
                    raw = await ac.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
                    assert raw.headers["x-modelmux-provider"] == "good"
                    return raw.status_code

            return Counter(await asyncio.gather(*(one() for _ in range(n))))

    started = time.monotonic()
    assert asyncio.run(burst(500)) == {200: 500}
    elapsed = time.monotonic() - started
    # 3 failures opened the breaker; after that only one trial per cool-down that passed.
    assert 3 <= dead.attempts <= 3 + int(elapsed / 1.0) + 1 + 20
    before = dead.attempts
    time.sleep(1.1)
    assert statuses(client(gw.root), 2) == [200, 200]
    assert dead.attempts == before + 1, "the trial request after the cool-down, then open again"
    dead.default = Fault.ok()
    time.sleep(1.1)
    providers = Counter(
        client(gw.root)
        .chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        .headers["x-modelmux-provider"]
        for _ in range(6)
    )
    assert providers["dead"] >= 2, "back in the rotation once its trial succeeded"


def test_panic_mode_tries_the_deployment_back_soonest_when_every_one_is_ejected(fakes, serve) -> None:
    a, a_srv = fakes()
    b, b_srv = fakes()
    a.default = b.default = Fault.error(500)
    models = '[models.m]\ndeployments = [{provider = "a", model = "x"}, {provider = "b", model = "y"}]\n'
    gw = serve(
        toml(
            {"a": a_srv.url + "/v1", "b": b_srv.url + "/v1"},
            models,
            "failures = 1\nmin_requests = 1\ncooldown_seconds = 60\nmax_ejection_percent = 100\n",
        )
    )
    c = client(gw.root)
    assert statuses(c, 1) == [502]  # one request: a, then b; both open now
    circuits = {n: p["circuit"] for n, p in httpx.get(f"{gw.root}/health").json()["providers"].items()}
    assert circuits == {"a": "open", "b": "open"}
    first = (a.attempts, b.attempts)
    assert first == (1, 1)
    assert statuses(c, 1) == [502], "tried anyway: the upstream's error, not a gateway 503"
    assert a.attempts + b.attempts == 3
    a.default = b.default = Fault.ok()
    assert statuses(c, 1) == [200]
    assert "panic mode for m" in gw.log.read_text()
    health = httpx.get(f"{gw.root}/health").json()
    assert "open" in {p["circuit"] for p in health["providers"].values()}  # the other still cools down
    assert health["status"] == "degraded"


def test_a_429_with_retry_after_cools_only_that_deployment_down(fakes, serve) -> None:
    a, a_srv = fakes()
    _b, b_srv = fakes()
    models = '[models.m]\ndeployments = [{provider = "a", model = "x", weight = 5}, {provider = "b", model = "y"}]\n'
    gw = serve(toml({"a": a_srv.url + "/v1", "b": b_srv.url + "/v1"}, models, "max_retry_after_seconds = 1\n"))
    a.plan(Fault.error(429, retry_after=30))
    c = client(gw.root)
    seen = [
        c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES).headers["x-modelmux-provider"]
        for _ in range(4)
    ]
    assert seen == ["b"] * 4 and a.attempts == 1, "a rests for the time it asked (capped at 1 s)"
    time.sleep(1.05)
    assert (
        c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES).headers["x-modelmux-provider"] == "a"
    )
    providers = httpx.get(f"{gw.root}/health").json()["providers"]
    assert providers["a"]["status"] == "ok" and providers["a"]["failures"] == 0  # a 429 is no failure


def test_rejected_credentials_move_on_to_the_fallback_and_count_against_the_provider(fakes, serve) -> None:
    bad, bad_srv = fakes()
    _good, good_srv = fakes()
    bad.default = Fault.error(401)
    models = (
        '[models.m]\nprovider = "bad"\nmodel = "x"\nfallbacks = ["n"]\n[models.n]\nprovider = "good"\nmodel = "y"\n'
    )
    gw = serve(
        toml(
            {"bad": bad_srv.url + "/v1", "good": good_srv.url + "/v1"},
            models,
            "failures = 2\nmin_requests = 1\ncooldown_seconds = 60\n",
        )
    )
    c = client(gw.root)
    answered = [
        c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES).headers["x-modelmux-provider"]
        for _ in range(4)
    ]
    assert answered == ["good"] * 4
    assert bad.attempts == 2, "no retry of refused credentials, and its breaker opened after 2"
    bad_health = httpx.get(f"{gw.root}/health").json()["providers"]["bad"]
    assert bad_health["status"] == "down" and "rejected our credentials" in bad_health["last_error_message"]


def test_shared_on_with_the_disk_store_shares_breakers_between_processes_of_one_machine(fakes, tmp_path) -> None:
    """Two gateways on one disk store (as the workers of one machine): the second knows at start
    that the first took the dead deployment out, and leaves it alone."""
    from modelmux.testing import run_gateway

    dead, dead_srv = fakes()
    _good, good_srv = fakes()
    dead.default = Fault.error(500)
    config = {
        "state": {"backend": "disk", "path": str(tmp_path / "state")},
        "router": {
            "circuit_breaker": {
                "failures": 2,
                "min_requests": 1,
                "cooldown_seconds": 60,
                "shared": "on",
                "sync_interval_seconds": 0.05,
            }
        },
        "providers": {
            "dead": {"type": "openai_compatible", "base_url": dead_srv.url + "/v1", "max_retries": 0},
            "good": {"type": "openai_compatible", "base_url": good_srv.url + "/v1", "max_retries": 0},
        },
        "models": {"m": {"deployments": [{"provider": "dead", "model": "x"}, {"provider": "good", "model": "y"}]}},
    }
    with run_gateway(config) as first:
        assert statuses(client(first.root), 4) == [200] * 4
        assert httpx.get(f"{first.root}/health").json()["providers"]["dead"]["circuit"] == "open"
        with run_gateway(config) as second:

            def second_knows() -> bool:
                return httpx.get(f"{second.root}/health").json()["providers"]["dead"]["circuit"] == "open"

            end = time.monotonic() + 5
            while not second_knows() and time.monotonic() < end:
                time.sleep(0.05)
            assert second_knows()
            tried = dead.attempts
            assert statuses(client(second.root), 3) == [200] * 3
            assert dead.attempts == tried, "the second never tried the deployment the first took out"


def test_a_failing_readiness_probe_logs_at_debug_only(serve, refused_url) -> None:
    gw = serve(
        toml(
            {"dead": refused_url},
            '[models.m]\nprovider = "dead"\nmodel = "x"\n',
            server='ready_requires_providers = "all"\n',
        )
    )
    for _ in range(3):
        ready = httpx.get(f"{gw.root}/health/ready")
        assert ready.status_code == 503 and "cannot connect" in ready.json()["problems"]["dead"]
    assert "/health/ready" not in gw.log.read_text(), "not at the default log level (info)"
