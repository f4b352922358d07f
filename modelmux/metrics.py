"""Prometheus metrics: names, labels and meanings in docs/observability.md ("Metrics").

Label values are bounded: ``endpoint`` is the route template (``unmatched`` for
unknown paths), ``model`` a configured ``[models]`` name, or ``PROVIDER/*`` for
requests that named a provider's model directly or went to ``router.default_provider``
(a client must not be able to create label values at will).

With several worker processes ``modelmux serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before the workers start; each worker then writes its samples to files there and
``/metrics`` merges them (prometheus-client multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Container
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _mp

from modelmux import health

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter("modelmux_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
REQUEST_DURATION = Histogram(
    "modelmux_request_duration_seconds",
    "Time from request to the last byte of the answer",
    ["endpoint", "provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
PROVIDER_REQUESTS = Counter(
    "modelmux_provider_requests_total",
    "Upstream attempts by outcome",
    ["provider", "model", "status"],
)
TOKENS = Counter("modelmux_tokens_total", "Tokens reported by upstreams", ["provider", "model", "type"])
TTFT = Histogram(
    "modelmux_time_to_first_token_seconds",
    "Time from request to the first streamed byte",
    ["provider", "model"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
ERRORS = Counter("modelmux_errors_total", "Errors answered, by OpenAI error type/code", ["type"])
CACHE_REQUESTS = Counter("modelmux_cache_requests_total", "Response cache lookups", ["result"])
INFLIGHT = Gauge(
    "modelmux_inflight_requests",
    "Upstream requests in flight (until the last byte of a stream)",
    ["provider"],
    multiprocess_mode="livesum",
)
UPSTREAM_RETRIES = Counter("modelmux_upstream_retries_total", "Upstream attempts retried", ["provider", "reason"])
FALLBACKS = Counter("modelmux_fallbacks_total", "Requests moved to a fallback model", ["from", "to"])
#: ``tool`` is a configured tool's type (``[tools.TYPE]``): bounded by the configuration.
TOOL_CALLS = Counter("modelmux_tool_calls_total", "Gateway tool calls run by the tool loop", ["tool", "status"])
TOOL_DURATION = Histogram(
    "modelmux_tool_call_duration_seconds",
    "Time one gateway tool call took",
    ["tool"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
#: 1 unless the provider is ``down`` in /health (set on changes, never per request); with several
#: workers, the value the most recent live worker set.
PROVIDER_UP = Gauge(
    "modelmux_provider_up",
    "1 when the provider is ok or degraded, 0 when down (docs/observability.md)",
    ["provider"],
    multiprocess_mode="livemostrecent",
)


#: Label children already made, by (metric, label values). ``labels()`` validates and converts its
#: arguments and takes a lock on every call (several per request); the children themselves are
#: the same objects ``labels()`` keeps, so caching them changes nothing else. Label values are
#: bounded (see above), the cap is a guard against a mistake making that untrue.
_children: dict[tuple[Any, tuple[str, ...]], Any] = {}
CHILDREN_CAP = 10_000


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, cached: for the per-request hot path."""
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        if len(_children) >= CHILDREN_CAP:
            _children.clear()
        found = _children[key] = metric.labels(*values)
    return found


def model_label(route: str, provider: str, configured: Container[str]) -> str:
    """The ``model`` label of a deployment: its configured name, else ``PROVIDER/*``."""
    return route if route in configured else f"{provider}/*"


def usage_tokens(usage: dict[str, object] | None) -> tuple[int | None, int | None]:
    """(input, output) token counts of a Chat Completions or Responses usage object."""
    if not usage:
        return None, None
    inp = usage.get("prompt_tokens", usage.get("input_tokens"))
    out = usage.get("completion_tokens", usage.get("output_tokens"))
    return (inp if isinstance(inp, int) else None, out if isinstance(out, int) else None)


def record_usage(provider: str, model: str, usage: dict[str, object] | None) -> tuple[int | None, int | None]:
    inp, out = usage_tokens(usage)
    if inp:
        child(TOKENS, provider, model, "input").inc(inp)
    if out:
        child(TOKENS, provider, model, "output").inc(out)
    return inp, out


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> bytes:
    """The exposition text: this process's registry, or every worker's files merged."""
    if multiprocess_dir() is None:
        return generate_latest()
    registry = CollectorRegistry()
    _mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exited(pid: int | None = None) -> None:
    """Drop a stopped worker's live gauges (its in-flight count) in multiprocess mode."""
    if multiprocess_dir() is not None:
        _mp.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def upstream_attempt(provider: str, model: str, status: int, error: str | None = None, fault: bool = False) -> None:
    """One upstream attempt ended with ``status``: the counter and the provider's health state.

    Only a deployment fault (``fault``: connection, timeout, 5xx, credentials) counts against the
    provider's health; a 4xx, 429 included, is the upstream answering about the request."""
    child(PROVIDER_REQUESTS, provider, model, str(status)).inc()
    health.record_attempt(provider, (error or f"status {status}") if fault else None)


def provider_up(provider: str, up: bool) -> None:
    PROVIDER_UP.labels(provider).set(1 if up else 0)
