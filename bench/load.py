"""Closed-loop asyncio load generator (aiohttp client on uvloop).

Runs ``--concurrency`` workers that each send ``POST /v1/chat/completions``
back to back for ``--duration`` seconds (after an uncounted ``--warmup``), then
prints one JSON object: requests/s, p50/p99 latency and, in stream mode, p50/p99
time to first body byte. A response counts as OK only if it is a 200 and, in
stream mode, ends with ``data: [DONE]``.

Point ``--url`` at the forwarder/gateway, or at the fake upstream itself for the
direct baseline (``--direct`` is a shortcut for the default upstream URL).

Usage: ``python bench/load.py --url http://127.0.0.1:18001/v1/chat/completions -c 32 -d 6 --stream``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from dataclasses import dataclass, field

import aiohttp
import orjson
import uvloop

DIRECT_URL = "http://127.0.0.1:18000/v1/chat/completions"
DONE = b"data: [DONE]\n\n"


def request_body(stream: bool) -> bytes:
    return orjson.dumps(
        {
            "model": "fake-model-1",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Say something short about benchmarks."},
            ],
            "temperature": 0.2,
            "stream": stream,
        }
    )


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)
    errors: int = 0
    completed: int = 0  # all OK answers, warm-up included (for CPU-per-request accounting)
    recording: bool = False


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def one_request(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool) -> tuple[float, float]:
    """Return (latency, ttfb) in seconds; raise on a bad answer."""
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
        first = await resp.content.readany()
        ttfb = time.perf_counter() - t0
        rest = await resp.content.read()  # everything up to EOF
        latency = time.perf_counter() - t0
        if resp.status != 200 or not first:
            raise RuntimeError(f"HTTP {resp.status}")
        if stream and not (first + rest).endswith(DONE):
            raise RuntimeError("stream did not end with [DONE]")
    return latency, ttfb


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    stream: bool,
    stats: Stats,
    end: float,
) -> None:
    while time.perf_counter() < end:
        try:
            latency, ttfb = await one_request(session, url, body, stream)
        except (TimeoutError, aiohttp.ClientError, RuntimeError):
            if stats.recording:
                stats.errors += 1
            continue
        stats.completed += 1
        if stats.recording:
            stats.latencies.append(latency)
            stats.ttfbs.append(ttfb)


async def run(url: str, concurrency: int, duration: float, warmup: float, stream: bool) -> dict[str, object]:
    body = request_body(stream)
    stats = Stats()
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        end = start + warmup + duration
        tasks = [asyncio.create_task(worker(session, url, body, stream, stats, end)) for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        stats.recording = True
        t_rec = time.perf_counter()
        await asyncio.gather(*tasks)  # in-flight requests at the deadline still count
        elapsed = time.perf_counter() - t_rec

    ms = 1000.0
    result: dict[str, object] = {
        "url": url,
        "mode": "stream" if stream else "nonstream",
        "concurrency": concurrency,
        "duration_s": round(elapsed, 3),
        "requests": len(stats.latencies),
        "requests_incl_warmup": stats.completed,
        "errors": stats.errors,
        "rps": round(len(stats.latencies) / elapsed, 1),
        "p50_ms": round(percentile(stats.latencies, 50) * ms, 3),
        "p99_ms": round(percentile(stats.latencies, 99) * ms, 3),
    }
    if stream:
        result["ttfb_p50_ms"] = round(percentile(stats.ttfbs, 50) * ms, 3)
        result["ttfb_p99_ms"] = round(percentile(stats.ttfbs, 99) * ms, 3)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = ap.add_mutually_exclusive_group()
    target.add_argument("--url", default=DIRECT_URL)
    target.add_argument(
        "--direct",
        action="store_true",
        help=f"baseline: hit the fake upstream at {DIRECT_URL}",
    )
    ap.add_argument("-c", "--concurrency", type=int, default=32)
    ap.add_argument("-d", "--duration", type=float, default=6.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before measuring")
    ap.add_argument("--stream", action="store_true", help='send "stream": true and read SSE')
    args = ap.parse_args()
    url = DIRECT_URL if args.direct else args.url
    result = uvloop.run(run(url, args.concurrency, args.duration, args.warmup, args.stream))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
