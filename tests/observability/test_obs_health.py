"""/health reports version, uptime, provider state and request totals; /health/ready probes."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from modelmux import __version__
from modelmux.health import HIDDEN
from modelmux.testing import LoopbackServer, free_port, run_gateway


def _config(
    upstream: LoopbackServer, h: Any, interval: float, state: str = "memory", requires: str = "none"
) -> dict[str, Any]:
    return {
        "server": {"ready_check_interval_seconds": interval, "ready_requires_providers": requires},
        "providers": {
            "up": {"type": "fakeoai", "base_url": f"{upstream.url}/v1", "api_key": h.PROVIDER_KEY, "max_retries": 0},
            "echo": {"type": "echo"},
        },
        "models": {"m": {"provider": "up", "model": "upstream-m"}, "echo": {"provider": "echo", "model": "echo"}},
        "state": {"backend": state},
    }


def test_health_reports_provider_state_and_request_totals(upstream: LoopbackServer, h: Any) -> None:
    with run_gateway(_config(upstream, h, 60), plugins=h.plugins) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        before = httpx.get(f"{gw.root}/health").json()
        msgs = [{"role": "user", "content": "hi"}]
        client.chat.completions.create(model="m", messages=msgs)
        client.chat.completions.create(model="echo", messages=msgs)
        upstream.app["fail"].append(500)
        try:
            client.chat.completions.create(model="m", messages=msgs)
        except openai.APIStatusError:
            pass
        try:
            client.chat.completions.create(model="nope", messages=msgs)
        except openai.NotFoundError:
            pass
        body = httpx.get(f"{gw.root}/health").json()

    assert body["version"] == __version__ and body["uptime_seconds"] > 0 and body["worker_pid"] > 0
    up = body["providers"]["up"]
    # Its last attempt failed: degraded (down takes router.circuit_breaker.failures in a row).
    assert up["type"] == "fakeoai" and up["status"] == "degraded" and up["circuit"] == "closed"
    assert up["consecutive_failures"] == 1 and body["status"] == "degraded"
    assert up["last_success"] and up["last_error"] and "upstream error 500" in up["last_error_message"]
    assert h.PROVIDER_KEY not in str(body)
    assert body["providers"]["echo"]["last_success"] and body["providers"]["echo"]["last_error"] is None
    req, was = body["requests"], before["requests"]
    assert req["total"] - was["total"] == 4
    assert req["succeeded"] - was["succeeded"] == 2
    assert req["failed"] - was["failed"] == 1
    assert req["client_errors"] - was["client_errors"] == 1
    assert 0 < req["success_rate"] < 1


def test_ready_probes_each_provider_and_caches_the_answer(upstream: LoopbackServer, h: Any) -> None:
    """The old behaviour, kept behind server.ready_requires_providers = "all"."""
    with run_gateway(_config(upstream, h, 3600, requires="all"), plugins=h.plugins) as gw:
        assert httpx.get(f"{gw.root}/health/ready").json() == {"status": "ready"}
        upstream.app["ready"] = False
        assert httpx.get(f"{gw.root}/health/ready").status_code == 200  # cached for the interval
        probes = [r for r in upstream.requests if r["path"] == "/v1/models"]
        assert len(probes) == 1 and probes[0]["headers"]["Authorization"] == f"Bearer {h.PROVIDER_KEY}"

    with run_gateway(_config(upstream, h, 0, requires="all"), plugins=h.plugins) as gw:
        r = httpx.get(f"{gw.root}/health/ready")
        assert r.status_code == 503
        assert r.json()["problems"] == {"up": "provider up is not ready"}
        upstream.app["ready"] = True
        assert httpx.get(f"{gw.root}/health/ready").status_code == 200


def test_by_default_a_failing_upstream_probe_shows_in_health_not_in_ready(upstream: LoopbackServer, h: Any) -> None:
    upstream.app["ready"] = False
    try:
        with run_gateway(_config(upstream, h, 0), plugins=h.plugins) as gw:
            assert httpx.get(f"{gw.root}/health/ready").json() == {"status": "ready"}
            assert not [r for r in upstream.requests if r["path"] == "/v1/models"], "ready probes no upstream"
            body = httpx.get(f"{gw.root}/health").json()
            up = body["providers"]["up"]
            assert up["status"] == "down" and up["probe"]["ok"] is False
            assert up["probe"]["detail"] == "provider up is not ready" and up["probe"]["checked_at"]
            assert body["providers"]["echo"]["status"] == "ok" and body["status"] == "degraded"
            metrics = httpx.get(f"{gw.root}/metrics").text
            assert 'modelmux_provider_up{provider="up"} 0.0' in metrics
            assert 'modelmux_provider_up{provider="echo"} 1.0' in metrics
    finally:
        upstream.app["ready"] = True


def test_ready_requires_any_provider(upstream: LoopbackServer, h: Any) -> None:
    upstream.app["ready"] = False
    try:
        with run_gateway(_config(upstream, h, 0, requires="any"), plugins=h.plugins) as gw:
            assert httpx.get(f"{gw.root}/health/ready").status_code == 200  # echo is ready
        config = _config(upstream, h, 0, requires="any")
        del config["providers"]["echo"], config["models"]["echo"]
        with run_gateway(config, plugins=h.plugins) as gw:
            r = httpx.get(f"{gw.root}/health/ready")
            assert r.status_code == 503
            why = "no provider passes its readiness probe: provider up is not ready"
            assert r.json()["problems"] == {"providers": why}
    finally:
        upstream.app["ready"] = True


def test_ready_fails_when_the_state_store_does_not_answer(upstream: LoopbackServer, h: Any) -> None:
    with run_gateway(_config(upstream, h, 0, state="silent"), plugins=h.plugins) as gw:
        r = httpx.get(f"{gw.root}/health/ready")
    assert r.status_code == 503
    assert "state store does not answer" in r.json()["problems"]["state"]
    assert "refused" in r.json()["problems"]["state"]


def test_error_details_need_a_client_key(upstream: LoopbackServer, h: Any) -> None:
    config = _config(upstream, h, 0)
    config["server"]["api_keys"] = ["client-key"]
    upstream.app["fail"].append(500)
    with run_gateway(config, plugins=h.plugins) as gw:
        c = openai.OpenAI(base_url=gw.url, api_key="client-key", max_retries=0)
        try:
            c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError:
            pass
        anonymous = httpx.get(f"{gw.root}/health").json()["providers"]["up"]
        wrong = httpx.get(f"{gw.root}/health", headers={"Authorization": "Bearer nope"}).json()["providers"]["up"]
        keyed = httpx.get(f"{gw.root}/health", headers={"api-key": "client-key"}).json()["providers"]["up"]
    for hidden in (anonymous, wrong):
        assert hidden["last_error_message"] == HIDDEN and hidden["failures"] == 1 and hidden["last_error"]
        assert "500" not in str(hidden)
    assert "upstream error 500" in keyed["last_error_message"]


def test_without_keys_details_show_only_on_a_loopback_server(upstream: LoopbackServer, h: Any) -> None:
    config = _config(upstream, h, 0, state="silent")
    config["server"]["host"] = "0.0.0.0"  # what the server would listen on; the test binds loopback anyway
    with run_gateway(config, plugins=h.plugins) as gw:
        ready = httpx.get(f"{gw.root}/health/ready")
        body = httpx.get(f"{gw.root}/health").json()
    assert ready.status_code == 503 and ready.json()["problems"] == {"state": HIDDEN}
    assert body["state_store"] == {"status": "down", "error": HIDDEN} and body["status"] == "down"

    with run_gateway(_config(upstream, h, 0, state="silent"), plugins=h.plugins) as gw:  # 127.0.0.1
        ready = httpx.get(f"{gw.root}/health/ready")
    assert "state store does not answer" in ready.json()["problems"]["state"]


def test_a_probe_error_names_its_provider_once(upstream: LoopbackServer, h: Any) -> None:
    config = _config(upstream, h, 0, requires="all")
    config["providers"]["up"]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens
    with run_gateway(config, plugins=h.plugins) as gw:
        r = httpx.get(f"{gw.root}/health/ready")
    assert r.status_code == 503
    why = r.json()["problems"]["up"]
    assert why.startswith("provider up: cannot connect to 127.0.0.1:") and why.count("provider up") == 1, why
