"""Deployments: weighted round robin, least in-flight, circuit breakers with trial requests,
and a burst of 200 streams with one deployment of two down."""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import threading
import time
import tracemalloc
from collections import Counter
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import run_gateway
from modelmux.testing.faults import Fault

MESSAGES = [{"role": "user", "content": "alpha beta gamma"}]


def cfg(providers: dict[str, Any], models: dict[str, Any], router: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"providers": providers, "models": models, "router": router or {}, "state": {"backend": "memory"}}


def answered_by(c: openai.OpenAI, model: str = "m") -> str:
    raw = c.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "alpha beta gamma"
    return raw.headers["x-modelmux-provider"]


def test_weighted_round_robin_follows_the_weights(upstreams, table, load, settle) -> None:
    a, a_srv = upstreams()
    b, b_srv = upstreams()
    model = {
        "strategy": "weighted_round_robin",
        "deployments": [
            {"provider": "a", "model": "ma", "weight": 3},
            {"provider": "b", "model": "mb", "weight": 1},
        ],
    }
    with run_gateway(cfg({"a": table(a_srv.url + "/v1"), "b": table(b_srv.url + "/v1")}, {"m": model})) as gw:
        c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
        seen = [answered_by(c) for _ in range(8)]
        assert Counter(seen) == {"a": 6, "b": 2}
        assert seen[:4].count("b") == 1  # smooth: b is spread out, not bunched at the end
        assert (a.models, b.models) == (["ma"] * 6, ["mb"] * 2)


def test_least_inflight_sends_new_requests_away_from_a_busy_deployment(upstreams, table, load, settle) -> None:
    a, a_srv = upstreams()
    b, b_srv = upstreams()
    a.default = b.default = Fault.ok()
    model = {
        "strategy": "least_inflight",
        "deployments": [{"provider": "a", "model": "ma"}, {"provider": "b", "model": "mb"}],
    }
    with run_gateway(cfg({"a": table(a_srv.url + "/v1"), "b": table(b_srv.url + "/v1")}, {"m": model})) as gw:
        a.plan(Fault.ok(delay=0.3))
        b.plan(Fault.ok(delay=0.3))
        body = {"model": "m", "messages": MESSAGES, "stream": True}
        with httpx.Client(timeout=10) as http, http.stream("POST", f"{gw.url}/chat/completions", json=body) as slow:
            busy = slow.headers["x-modelmux-provider"]
            c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
            others = {answered_by(c) for _ in range(4)}
            assert others == {"b" if busy == "a" else "a"}
            slow.read()
        assert settle(lambda: load(gw)["inflight"] == 0)


def circuits(root: str) -> dict[str, str]:
    providers = httpx.get(f"{root}/health").json()["providers"]
    return {name: p["circuit"] for name, p in providers.items()}


def test_circuit_opens_after_failures_then_a_trial_request_closes_it(upstreams, table, settle) -> None:
    bad, bad_srv = upstreams()
    good, good_srv = upstreams()
    bad.default = Fault.error(500)
    config = cfg(
        {"bad": table(bad_srv.url + "/v1", max_retries=0), "good": table(good_srv.url + "/v1")},
        {"m": {"provider": "bad", "model": "x", "fallbacks": ["n"]}, "n": {"provider": "good", "model": "y"}},
        {"circuit_breaker": {"failures": 2, "min_requests": 1, "cooldown_seconds": 0.5}},
    )
    with run_gateway(config) as gw:
        c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
        assert [answered_by(c) for _ in range(6)] == ["good"] * 6
        assert (bad.attempts, good.attempts) == (2, 6)  # then the open circuit kept requests away from bad
        assert circuits(gw.root) == {"bad": "open", "good": "closed"}
        bad.default = Fault.ok()  # it recovers; after the cool-down one trial request finds out
        time.sleep(0.6)
        assert answered_by(c) == "bad"
        assert [answered_by(c) for _ in range(3)] == ["bad"] * 3  # closed again
        assert circuits(gw.root) == {"bad": "closed", "good": "closed"}
        assert bad.attempts == 6


def test_a_single_deployment_without_fallback_is_never_refused_by_its_breaker(upstreams, table) -> None:
    """Its breaker opens, yet every request still goes upstream: the upstream's own answers reach
    the client (never a gateway-made 503), and the first success closes the breaker again."""
    bad, bad_srv = upstreams()
    bad.default = Fault.error(500)
    config = cfg(
        {"bad": table(bad_srv.url + "/v1", max_retries=0)},
        {"m": {"provider": "bad", "model": "x"}},
        {"circuit_breaker": {"failures": 1, "min_requests": 1, "cooldown_seconds": 60}},
    )
    with run_gateway(config) as gw:
        c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
        for _ in range(3):
            with pytest.raises(openai.APIStatusError) as failed:
                c.chat.completions.create(model="m", messages=MESSAGES)
            assert "injected 500" in failed.value.message and "cooling down" not in failed.value.message
        assert bad.attempts == 3
        assert circuits(gw.root) == {"bad": "open"}
        bad.default = Fault.ok()
        assert answered_by(c) == "bad"
        assert circuits(gw.root) == {"bad": "closed"}


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_burst_of_200_streams_with_one_deployment_down(upstreams, table, refused_url, load, settle) -> None:
    up, up_srv = upstreams()
    model = {"deployments": [{"provider": "down", "model": "x"}, {"provider": "up", "model": "y"}]}
    config = cfg(
        {"down": table(refused_url, max_retries=1), "up": table(up_srv.url + "/v1")},
        {"m": model},
        {"circuit_breaker": {"failures": 3, "min_requests": 1, "cooldown_seconds": 60}},
    )

    async def burst(url: str, n: int) -> list[tuple[str, str]]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with openai.AsyncOpenAI(
            base_url=url, api_key="x", max_retries=0, timeout=60, http_client=httpx.AsyncClient(limits=limits)
        ) as c:

            async def one() -> tuple[str, str]:
                raw = await c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True)
                parsed = raw.parse()
                stream = await parsed if inspect.isawaitable(parsed) else parsed
                text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
                return raw.headers["x-modelmux-provider"], text

            return await asyncio.gather(*(one() for _ in range(n)))

    with run_gateway(config) as gw:
        baseline = load(gw)
        tracemalloc.start()
        try:
            # Warm-up at full size: the pools (200 kept-alive upstream connections) are part of idle.
            asyncio.run(burst(gw.url, 200))
            assert settle(lambda: load(gw) == baseline)
            gc.collect()
            idle, _ = tracemalloc.get_traced_memory()
            rss_idle = rss()
            results = asyncio.run(burst(gw.url, 200))
            assert settle(lambda: load(gw) == baseline), (load(gw), baseline)
            assert settle(lambda: up.active == 0)
            gc.collect()
            after, peak = tracemalloc.get_traced_memory()
            rss_after = rss()
        finally:
            tracemalloc.stop()
        assert results == [("up", "alpha beta gamma")] * 200
        assert up.attempts == 400
        # Loose: what 200 streams left behind is small next to what they used at their peak.
        print(
            f"burst: traced idle {idle / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB, after {after / 1e6:.1f} MB; "
            f"RSS {rss_idle / 1e6:.0f} -> {rss_after / 1e6:.0f} MB"
        )
        # Loose bounds: what 200 streams left behind (including the fake upstream's request log)
        # is a small part of what they used, and the process did not grow past its warm-up size.
        assert after - idle < max(1_000_000, (peak - idle) // 10)
        assert rss_after < rss_idle + 20_000_000
        assert threading.active_count() < 50
