"""The contract metrics, recorded by the real gateway for real requests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import LoopbackServer, free_port, metric, run_gateway, serve_process


def _config(upstream: LoopbackServer, h: Any) -> dict[str, Any]:
    return {
        "providers": {
            "echo": {"type": "echo", "delay_ms": 20},
            "up": {"type": "fakeoai", "base_url": f"{upstream.url}/v1", "api_key": h.PROVIDER_KEY, "max_retries": 1},
            "down": {"type": "fakeoai", "base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 0},
        },
        "models": {
            "echo": {"provider": "echo", "model": "echo"},
            "flaky": {"provider": "up", "model": "upstream-m1"},
            "broken": {"provider": "down", "model": "x", "fallbacks": ["echo"]},
        },
        "state": {"backend": "memory"},
    }


def test_every_contract_metric_is_recorded(upstream: LoopbackServer, h: Any) -> None:
    msgs = [{"role": "user", "content": "one two three"}]
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        before = h.read_metrics(gw.root)

        client.chat.completions.create(model="echo", messages=msgs)
        stream = client.chat.completions.create(
            model="echo", messages=msgs, stream=True, stream_options={"include_usage": True}
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "one two three"

        hold = asyncio.Event()
        upstream.app["hold"] = hold
        held = client.chat.completions.create(model="flaky", messages=msgs, stream=True)
        next(iter(held))  # the upstream waits for `hold`: the stream is in flight
        during = h.read_metrics(gw.root)
        upstream.loop.call_soon_threadsafe(hold.set)
        assert "".join(c.choices[0].delta.content or "" for c in held if c.choices) == "one two three"
        upstream.app["hold"] = None

        upstream.app["fail"].append(503)  # first attempt fails, the retry answers
        client.chat.completions.create(model="flaky", messages=msgs)
        client.chat.completions.create(model="broken", messages=msgs)  # unreachable: falls back to echo
        client.chat.completions.create(model="echo/anything-a-client-makes-up", messages=msgs)
        try:
            client.chat.completions.create(model="no-such-model", messages=msgs)
        except openai.NotFoundError:
            pass
        httpx.get(f"{gw.url}/models/echo")
        httpx.get(f"{gw.root}/no/such/path/123")
        after = h.read_metrics(gw.root)

    def delta(name: str, **labels: str) -> float:
        return h.sample(after, name, **labels) - h.sample(before, name, **labels)

    assert h.sample(during, "modelmux_inflight_requests", provider="up") == 1
    assert h.sample(after, "modelmux_inflight_requests", provider="up") == 0
    assert h.sample(after, "modelmux_inflight_requests", provider="echo") == 0

    ok = {"method": "POST", "endpoint": "/v1/chat/completions", "status": "200"}
    assert delta("modelmux_http_requests_total", **ok) == 6
    assert delta("modelmux_http_requests_total", method="POST", endpoint="/v1/chat/completions", status="404") == 1
    # Bounded labels: the route template, never the raw path.
    assert delta("modelmux_http_requests_total", method="GET", endpoint="/v1/models/{model:path}", status="200") == 1
    assert delta("modelmux_http_requests_total", method="GET", endpoint="unmatched", status="404") == 1
    assert not any("no/such/path" in str(key) for key in after)
    assert not any("anything-a-client-makes-up" in str(key) for key in after)

    assert delta("modelmux_request_duration_seconds_count", endpoint="/v1/chat/completions", provider="echo") == 4
    assert delta("modelmux_request_duration_seconds_count", endpoint="/v1/chat/completions", provider="up") == 2

    # The echo answers count 3 prompt words and 3 answer words, streamed or not.
    assert delta("modelmux_tokens_total", provider="echo", model="echo", type="input") == 3 * 3
    assert delta("modelmux_tokens_total", provider="echo", model="echo", type="output") == 3 * 3
    assert delta("modelmux_tokens_total", provider="up", model="flaky", type="input") == 3
    assert delta("modelmux_tokens_total", provider="echo", model="echo/*", type="output") == 3
    assert delta("modelmux_time_to_first_token_seconds_count", provider="echo", model="echo") == 1
    assert delta("modelmux_time_to_first_token_seconds_count", provider="up", model="flaky") == 1

    assert delta("modelmux_provider_requests_total", provider="up", model="flaky", status="503") == 1
    assert delta("modelmux_provider_requests_total", provider="up", model="flaky", status="200") == 2
    assert delta("modelmux_provider_requests_total", provider="down", model="broken", status="502") == 1
    assert delta("modelmux_provider_requests_total", provider="echo", model="echo/*", status="200") == 1
    assert delta("modelmux_upstream_retries_total", provider="up", reason="upstream_unavailable") == 1
    assert delta("modelmux_fallbacks_total", **{"from": "broken", "to": "echo"}) == 1
    assert delta("modelmux_errors_total", type="model_not_found") == 1


def test_docs_and_dashboard_cover_exactly_the_metrics_we_export() -> None:
    import json
    import re
    from pathlib import Path

    from prometheus_client import REGISTRY

    import modelmux.metrics  # noqa: F401  (registers them)

    root = Path(__file__).resolve().parents[2]
    ours = {m.name for m in REGISTRY.collect() if m.name.startswith("modelmux_")}
    assert len(ours) == 13
    doc = (root / "docs" / "observability.md").read_text()
    assert all(f"`{name}" in doc for name in ours)
    dashboard = json.loads((root / "examples" / "grafana" / "modelmux-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    used = {re.sub(r"_(bucket|total)$", "", n) for n in re.findall(r"modelmux_[a-z_]+", exprs)}
    assert used == {n.removesuffix("_total") for n in ours}


def test_a_stream_without_include_usage_is_counted_and_charged(tmp_path: Any) -> None:
    """A real ``modelmux serve``: the echo provider's stream sends no usage chunk the client did not
    ask for, yet its tokens reach the token counter, the log line and the key's token limit."""
    config = {
        "server": {"api_keys": ["sk-usage-test-1"], "limits": {"tokens_per_minute": 5}},
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo"}},
        "state": {"backend": "memory"},
    }
    with serve_process(config, tmp_path) as served:
        client = openai.OpenAI(base_url=f"{served.root}/v1", api_key="sk-usage-test-1", max_retries=0)
        messages: Any = [{"role": "user", "content": "one two three four five six"}]
        chunks = list(client.chat.completions.create(model="echo", messages=messages, stream=True))
        assert all(c.usage is None for c in chunks) and chunks[-1].choices  # no usage chunk was sent
        labels = {"provider": "echo", "model": "echo"}
        assert metric(served.root, "modelmux_tokens_total", type="input", **labels) == 6
        assert metric(served.root, "modelmux_tokens_total", type="output", **labels) > 0
        assert "input_tokens=6" in served.request_line("POST /v1/chat/completions -> 200")
        with pytest.raises(openai.RateLimitError, match="tokens per minute"):
            client.chat.completions.create(model="echo", messages=messages)
