"""The benchmark's pieces keep working (`make bench` measures speed; this only checks answers).

The fixed-answer upstream (``bench/fake_upstream.py``) and the bare forwarder run as the bench
runs them, and the gateway gets the very configuration the bench writes: passthrough through
the ``vllm`` provider, translation through ``vertex`` with a service-account key whose token
endpoint is the fake's.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import run_gateway
from modelmux.testing.servers import free_port

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"modelmux_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fake = _load("fake_upstream")
scenarios = _load("scenarios")
KINDS = list(scenarios.KINDS)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """The fake upstream on a free port; its first line names its URL."""
    cmd = [sys.executable, str(BENCH / "fake_upstream.py"), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://" in line, line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(10)


def _post(base: str, t: Any) -> httpx.Response:
    headers = {"content-type": "application/json", "authorization": t.auth}
    return httpx.post(base + t.path, content=t.body_bytes, headers=headers, timeout=10)


def _stats(upstream: str) -> dict[str, int]:
    stats: dict[str, int] = httpx.get(f"{upstream}/stats").json()
    return stats


@pytest.mark.parametrize(("scenario", "stream"), KINDS)
def test_the_fake_upstream_gives_its_fixed_answer_to_what_the_bench_sends_it(
    upstream: str, scenario: str, stream: bool
) -> None:
    resp = _post(upstream, scenarios.target("direct", scenario, stream))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == ("text/event-stream" if stream else "application/json")
    anthropic = scenario == "translation"
    assert scenarios.check(scenario, resp.content, stream=stream, anthropic=anthropic, text=fake.TEXT) is None


def test_every_scenario_is_measured_and_embeddings_only_without_streaming() -> None:
    assert {s for s, _ in KINDS} == set(scenarios.SCENARIOS) and ("embeddings", True) not in KINDS
    assert scenarios.check_embeddings(b'{"data": []}') is not None  # the check can fail


def test_the_fake_vertex_streams_anthropic_events_in_order(upstream: str) -> None:
    resp = _post(upstream, scenarios.target("direct", "translation", True))
    names = [line[7:] for line in resp.text.splitlines() if line.startswith("event: ")]
    deltas = names.count("content_block_delta")
    assert deltas == fake.STREAM_PIECES
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert '"usage":{"output_tokens":48}' in resp.text


def test_the_fake_token_endpoint_and_vertex_auth(upstream: str) -> None:
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "a.b.c"}
    token = httpx.post(f"{upstream}/token", data=grant).json()
    assert token == {"access_token": fake.TOKEN, "expires_in": 3600, "token_type": "Bearer"}
    assert httpx.post(f"{upstream}/token", data={"grant_type": "password"}).status_code == 400
    location = f"{upstream}/v1/projects/{scenarios.PROJECT}/locations/{scenarios.REGION}"
    assert httpx.get(location).status_code == 401
    ok = httpx.get(location, headers={"authorization": f"Bearer {token['access_token']}"})
    assert ok.json()["locationId"] == scenarios.REGION
    t = scenarios.target("direct", "translation", False)
    wrong = httpx.post(upstream + t.path, content=t.body_bytes, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert httpx.get(f"{upstream}/v1/models").json()["data"][0]["id"] == scenarios.UPSTREAM_MODEL
    assert httpx.get(f"{upstream}/nowhere").status_code == 404


def test_the_gateway_with_the_bench_configuration_serves_both_scenarios(upstream: str, tmp_path: Path) -> None:
    key_file = scenarios.write_service_account(tmp_path / "sa.json", f"{upstream}/token")
    tokens_before = _stats(upstream).get("token", 0)
    with run_gateway(scenarios.gateway_config(upstream, key_file, tmp_path)) as gw:
        assert httpx.get(f"{gw.root}/health/ready").status_code == 200
        client = openai.OpenAI(base_url=gw.url, api_key=scenarios.API_KEY, max_retries=0)
        for model in (scenarios.VLLM_MODEL, scenarios.CLAUDE_MODEL):
            body = scenarios.chat_body(model, False)
            answer = client.chat.completions.create(model=model, messages=body["messages"], max_tokens=64)
            assert answer.choices[0].message.content == fake.TEXT
            chunks = client.chat.completions.create(model=model, messages=body["messages"], stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == fake.TEXT
        # What wrk sends, byte for byte, passes too.
        for scenario, stream in KINDS:
            resp = _post(gw.root, scenarios.target("modelmux", scenario, stream))
            assert resp.status_code == 200
            problem = scenarios.check(scenario, resp.content, stream=stream, anthropic=False, text=fake.TEXT)
            assert problem is None
        # The default features the bench measures are on: client keys and metrics.
        denied = openai.OpenAI(base_url=gw.url, api_key="wrong-key", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            denied.models.list()
        assert "modelmux_http_requests_total" in httpx.get(f"{gw.root}/metrics").text
    assert _stats(upstream)["token"] == tokens_before + 1  # fetched once, then cached


def test_the_bare_forwarder_forwards_both_scenarios(upstream: str) -> None:
    port = free_port()
    cmd = [sys.executable, str(BENCH / "forwarder.py"), "--port", str(port), "--upstream", upstream]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # until it listens (at most ~20 s)
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        for scenario, stream in KINDS:
            resp = _post(base, scenarios.target("bare", scenario, stream))
            assert resp.status_code == 200
            anthropic = scenario == "translation"
            assert scenarios.check(scenario, resp.content, stream=stream, anthropic=anthropic, text=fake.TEXT) is None
    finally:
        proc.terminate()
        proc.wait(10)
