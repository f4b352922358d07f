"""``/health/ready`` with ready_requires_providers = "all" follows a vLLM upstream: 200 while it serves
/v1/models, 503 once it is gone (the default readiness does not wait for upstreams)."""

from __future__ import annotations

from typing import Any

import httpx

from modelmux.testing import run_gateway

API_KEY = "sk-vllm-test"


def _config(url: str, api_key: str = API_KEY) -> dict[str, Any]:
    return {
        # probe on every call; "all": the old readiness that waits for the upstream
        "server": {"ready_check_interval_seconds": 0, "ready_requires_providers": "all"},
        "providers": {"vllm": {"type": "vllm", "base_url": url + "/v1", "api_key": api_key, "max_retries": 0}},
        "models": {"llama": {"provider": "vllm", "model": "meta-llama/Llama-3.1-8B-Instruct"}},
    }


def test_ready_while_the_upstream_is_up_and_503_when_it_is_down(start_fake_vllm: Any) -> None:
    fake = start_fake_vllm()
    with run_gateway(_config(fake.url)) as gw:
        up = httpx.get(f"{gw.root}/health/ready")
        assert up.status_code == 200, up.text
        seen = [r for r in fake.requests if r["path"] == "/v1/models"]
        assert seen and seen[-1]["headers"]["Authorization"] == f"Bearer {API_KEY}"
        assert not any(r["path"].endswith("/chat/completions") for r in fake.requests)  # no tokens spent

        fake.stop()  # the upstream goes away
        down = httpx.get(f"{gw.root}/health/ready")
        assert down.status_code == 503
        problem = down.json()["problems"]["vllm"]
        assert "provider vllm" in problem and "cannot connect" in problem


def test_a_rejected_key_is_not_ready_and_says_how_to_fix_it(start_fake_vllm: Any) -> None:
    fake = start_fake_vllm()
    with run_gateway(_config(fake.url, api_key="sk-wrong")) as gw:
        down = httpx.get(f"{gw.root}/health/ready")
        assert down.status_code == 503
        problem = down.json()["problems"]["vllm"]
        assert "rejected our credentials" in problem and "providers.vllm.api_key" in problem
        assert "sk-wrong" not in down.text
