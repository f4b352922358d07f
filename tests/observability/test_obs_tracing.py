"""OpenTelemetry: a span per request and per upstream attempt, W3C context passed upstream."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelmux.testing import LoopbackServer, run_gateway

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set once per process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


def _config(upstream: LoopbackServer, enabled: bool) -> dict[str, Any]:
    return {
        "tracing": {"enabled": enabled},
        "providers": {"up": {"type": "fakeoai", "base_url": f"{upstream.url}/v1", "max_retries": 1}},
        "models": {"m": {"provider": "up", "model": "upstream-m"}},
        "state": {"backend": "memory"},
    }


def test_spans_for_the_request_and_each_attempt(
    upstream: LoopbackServer, h: Any, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    upstream.app["fail"].append(503)  # two attempts: one fails, the retry answers
    with run_gateway(_config(upstream, True), plugins=h.plugins) as gw:
        r = httpx.post(
            f"{gw.url}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
        )
        assert r.status_code == 200
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind == trace.SpanKind.SERVER and s.name == "POST /v1/chat/completions"]
    assert len(server) == 1
    root = server[0]
    assert format(root.context.trace_id, "032x") == CLIENT_TRACE
    assert root.parent is not None and format(root.parent.span_id, "016x") == CLIENT_SPAN
    assert root.attributes["modelmux.provider"] == "up" and root.attributes["modelmux.retries"] == 1
    attempts = [s for s in spans if s.kind == trace.SpanKind.CLIENT]
    assert len(attempts) == 2
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in attempts)
    assert sorted(s.attributes["http.response.status_code"] for s in attempts) == [200, 503]
    # Each upstream request carried its own attempt span's context.
    sent = [r["headers"]["traceparent"] for r in upstream.requests if r["path"].endswith("/chat/completions")]
    assert sorted(sent) == sorted(f"00-{CLIENT_TRACE}-{format(s.context.span_id, '016x')}-01" for s in attempts)


def test_no_spans_and_no_traceparent_when_tracing_is_off(
    upstream: LoopbackServer, h: Any, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    with run_gateway(_config(upstream, False), plugins=h.plugins) as gw:
        httpx.post(f"{gw.url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in {k.lower() for k in upstream.requests[-1]["headers"]}


def test_the_sdk_is_imported_only_when_tracing_is_on() -> None:
    """Lazy: tracing off never loads the SDK; tracing on without the extra says what to install."""
    code = (
        "import sys\n"
        "from modelmux.app import create_app\n"
        "from modelmux.config import TracingSettings, load_config\n"
        "from modelmux.plugins import load_plugins\n"
        "from modelmux import tracing\n"
        "p = load_plugins(); c = load_config(None, p.registry, environ={})\n"
        "create_app(c, p)\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry.sdk')], 'SDK imported'\n"
        "sys.modules['opentelemetry.sdk'] = None  # as if the otel extra were not installed\n"
        "assert tracing.setup(TracingSettings(enabled=True)) is None\n"
    )
    # Only the host: some plugin libraries (redis-py) import the SDK themselves when it is installed.
    env = {**os.environ, "MODELMUX_LOAD_PLUGINS": ""}
    out = subprocess.run([sys.executable, "-c", code], cwd="/", timeout=60, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "pip install 'modelmux[otel]'" in out.stderr
