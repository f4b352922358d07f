"""Live traffic figures for the UI's overview: request rate, error rate, p50/p95 latency, tokens per minute.

Nothing is added to the request path: a background task reads this process's own Prometheus
metrics (``modelmux_http_requests_total``, ``modelmux_request_duration_seconds``,
``modelmux_tokens_total``) every ``server.ui.stats_interval_seconds`` and keeps the samples of
the last ``server.ui.stats_window_minutes`` in a bounded deque. Each point of a series is the
difference of two samples; percentiles are interpolated within the histogram's buckets, as
Prometheus' ``histogram_quantile`` does. With several workers each worker has its own figures
(like ``/health``); ``/metrics`` is the fleet's view.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from loguru import logger

from modelmux import metrics

API_PREFIX = "/v1/"


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    requests: float
    #: 5xx answers: the gateway or an upstream failed.
    errors: float
    #: 4xx answers: the client's request was refused (bad key, bad request, rate limit).
    client_errors: float
    tokens: float
    #: Cumulative counts of the request duration histogram by upper bound (``le``), API endpoints only.
    buckets: tuple[tuple[float, float], ...]


def take_sample() -> Sample:
    """This process's counters now (a few hundred label children at most: bounded labels)."""
    requests = errors = client_errors = 0.0
    for family in metrics.HTTP_REQUESTS.collect():
        for s in family.samples:
            if not s.name.endswith("_total") or not s.labels.get("endpoint", "").startswith(API_PREFIX):
                continue
            requests += s.value
            status = s.labels.get("status", "")
            if status.startswith("5"):
                errors += s.value
            elif status.startswith("4"):
                client_errors += s.value
    tokens = sum(s.value for family in metrics.TOKENS.collect() for s in family.samples if s.name.endswith("_total"))
    by_bound: dict[float, float] = {}
    for family in metrics.REQUEST_DURATION.collect():
        for s in family.samples:
            if s.name.endswith("_bucket") and s.labels.get("endpoint", "").startswith(API_PREFIX):
                bound = float(s.labels["le"])
                by_bound[bound] = by_bound.get(bound, 0.0) + s.value
    return Sample(time.time(), requests, errors, client_errors, tokens, tuple(sorted(by_bound.items())))


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower  # above the highest finite bound: that bound is all we know
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def _point(a: Sample, b: Sample) -> dict[str, Any]:
    seconds = max(b.at - a.at, 1e-6)
    requests = max(b.requests - a.requests, 0.0)
    earlier = dict(a.buckets)
    delta = [(bound, max(count - earlier.get(bound, 0.0), 0.0)) for bound, count in b.buckets]
    p50, p95 = quantile(0.5, delta), quantile(0.95, delta)
    return {
        "time": round(b.at, 3),
        "seconds": round(seconds, 3),
        "requests": requests,
        "requests_per_second": round(requests / seconds, 3),
        "error_rate": round((b.errors - a.errors) / requests, 4) if requests else None,
        "client_error_rate": round((b.client_errors - a.client_errors) / requests, 4) if requests else None,
        "p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
        "p95_ms": round(p95 * 1000, 1) if p95 is not None else None,
        "tokens_per_minute": round(max(b.tokens - a.tokens, 0.0) / seconds * 60, 1),
    }


class Traffic:
    """The sampler and its history."""

    def __init__(self, interval: float, window_minutes: float) -> None:
        self.interval = interval
        self.samples: deque[Sample] = deque(maxlen=max(2, math.ceil(window_minutes * 60 / interval) + 1))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.samples.append(take_sample())
        self._task = asyncio.create_task(self._run(), name="modelmux-ui-traffic")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.samples.append(take_sample())
            except Exception as exc:  # a figure missing from the UI must not end the sampler
                logger.warning("web UI: could not sample the metrics: {}: {}", type(exc).__name__, exc)

    def report(self) -> dict[str, Any]:
        """The series (one point per interval, oldest first), and summaries of the last minute
        and of the whole window up to now (a fresh sample: they move between the sampler's ticks)."""
        samples = list(self.samples)
        series = [_point(a, b) for a, b in itertools.pairwise(samples)]
        now = take_sample()
        recent = [s for s in samples if s.at >= now.at - 60] or samples[-1:]
        return {
            "interval_seconds": self.interval,
            "series": series,
            "last_minute": _point(recent[0], now) if recent else None,
            "window": _point(samples[0], now) if samples else None,
        }
