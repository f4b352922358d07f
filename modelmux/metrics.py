"""Prometheus metrics (names fixed by CONTRACT.md section 7).

Label values are bounded: ``endpoint`` is the route template, ``model`` the
configured name (or the provider's upstream id for ``PROVIDER/MODEL`` requests).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "Upstream requests in flight",
    ["provider"],
    multiprocess_mode="livesum",
)
UPSTREAM_RETRIES = Counter("modelmux_upstream_retries_total", "Upstream attempts retried", ["provider", "reason"])
FALLBACKS = Counter("modelmux_fallbacks_total", "Requests moved to a fallback model", ["from", "to"])


def record_usage(provider: str, model: str, usage: dict[str, object] | None) -> None:
    if not usage:
        return
    inp = usage.get("prompt_tokens", usage.get("input_tokens"))
    out = usage.get("completion_tokens", usage.get("output_tokens"))
    if isinstance(inp, int) and inp > 0:
        TOKENS.labels(provider, model, "input").inc(inp)
    if isinstance(out, int) and out > 0:
        TOKENS.labels(provider, model, "output").inc(out)
