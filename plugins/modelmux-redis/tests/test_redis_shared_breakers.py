"""Circuit breakers shared by replicas through Redis (``router.circuit_breaker.shared``): two real
``modelmux serve`` processes, one dead upstream, the real Redis at 127.0.0.1:6379.

Without sharing each replica needs ``failures`` failures of its own before it skips a dead
deployment; with it, the replicas' failures add up, and an opening or a 429 cool-down one replica
saw is taken over by the other."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis

from modelmux.testing import Fault, FaultyUpstream, LoopbackServer, free_port, serve_aiohttp

MESSAGES = [{"role": "user", "content": "alpha beta"}]


def _start(path: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """One ``modelmux serve`` that answers on its port as itself (``/health``'s ``worker_pid``): on a
    machine shared with other test runs, a free port may be taken before the server binds it."""
    for _ in range(5):
        port = free_port()
        env = dict(os.environ, MODELMUX_SERVER__PORT=str(port))
        cmd = [sys.executable, "-m", "modelmux", "serve", "--config", str(path)]
        proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
        root = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError, ValueError):
                if httpx.get(f"{root}/health", timeout=1).json().get("worker_pid") == proc.pid:
                    return proc, root
            time.sleep(0.05)
        proc.kill()
        proc.wait(15)
    raise AssertionError(f"a replica did not start:\n{log.read_text()}")


@contextlib.contextmanager
def replicas(config: str, tmp: Path, count: int = 2) -> Iterator[list[str]]:
    """``count`` ``modelmux serve`` processes on one configuration; yields their roots once live."""
    path = tmp / "modelmux.toml"
    path.write_text(config)
    procs: list[subprocess.Popen[bytes]] = []
    roots = []
    try:
        for n in range(count):
            proc, root = _start(path, tmp / f"replica-{n}.log")
            procs.append(proc)
            roots.append(root)
        yield roots
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


@pytest.fixture
def fakes() -> Iterator[Callable[[], tuple[FaultyUpstream, LoopbackServer]]]:
    with contextlib.ExitStack() as stack:

        def start() -> tuple[FaultyUpstream, LoopbackServer]:
            up = FaultyUpstream()
            return up, stack.enter_context(serve_aiohttp(up.app()))

        yield start


def config(redis_url: str, prefix: str, dead: str, good: str, shared: str = "auto", failures: int = 4) -> str:
    return f"""
[state]
backend = "redis"
url = "{redis_url}"
key_prefix = "{prefix}"

[router.circuit_breaker]
failures = {failures}
min_requests = 1
cooldown_seconds = 30
shared = "{shared}"
sync_interval_seconds = 0.1

[providers.dead]
type = "openai_compatible"
base_url = "{dead}/v1"
max_retries = 0

[providers.good]
type = "openai_compatible"
base_url = "{good}/v1"
max_retries = 0

[models.m]
strategy = "least_inflight"
deployments = [{{provider = "dead", model = "x"}}, {{provider = "good", model = "y"}}]
"""


def ask(root: str) -> str:
    c = openai.OpenAI(base_url=f"{root}/v1", api_key="x", max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    return raw.headers["x-modelmux-provider"]


def circuit(root: str) -> str:
    return str(httpx.get(f"{root}/health").json()["providers"]["dead"]["circuit"])


def wait_for(cond: Callable[[], bool], seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def until_dead_tried(root: str, dead: FaultyUpstream, n: int) -> None:
    """Requests to one replica until the dead deployment got ``n`` more attempts from it."""
    goal = dead.attempts + n
    for _ in range(50):
        assert ask(root) == "good"
        if dead.attempts >= goal:
            return
    raise AssertionError("the dead deployment was never tried")


def test_replicas_add_up_their_failures_and_share_the_opening(
    fakes, tmp_path: Path, redis_url: str, key_prefix: str, raw_redis: redis.Redis
) -> None:
    dead, dead_srv = fakes()
    _good, good_srv = fakes()
    dead.default = Fault.error(500)
    with replicas(config(redis_url, key_prefix, dead_srv.url, good_srv.url), tmp_path) as (a, b):
        until_dead_tried(a, dead, 2)
        until_dead_tried(b, dead, 2)  # 4 in all: the fleet's breaker opens on B's push
        assert dead.attempts == 4
        assert wait_for(lambda: circuit(a) == "open" and circuit(b) == "open")
        for root in (a, b, a, b, a, b):
            assert ask(root) == "good"
        assert dead.attempts == 4, "neither replica tries the dead deployment during the cool-down"
        assert raw_redis.get(f"{key_prefix}state:breaker:dead/x:open") is not None
    logs = "".join(p.read_text() for p in tmp_path.glob("replica-*.log"))
    assert "across replicas" in logs or "opened by another replica" in logs


def test_an_opening_and_a_429_cooldown_reach_a_replica_that_saw_no_failure(
    fakes, tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    dead, dead_srv = fakes()
    _good, good_srv = fakes()
    dead.default = Fault.error(500)
    with replicas(config(redis_url, key_prefix, dead_srv.url, good_srv.url, failures=2), tmp_path) as (a, b):
        until_dead_tried(a, dead, 2)
        assert wait_for(lambda: circuit(b) == "open"), "B never called dead, yet knows it is out"
        tried = dead.attempts
        assert [ask(b) for _ in range(4)] == ["good"] * 4 and dead.attempts == tried


def test_a_429_cooldown_is_shared(fakes, tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    busy, busy_srv = fakes()
    _good, good_srv = fakes()
    busy.default = Fault.error(429, retry_after=30)
    with replicas(config(redis_url, key_prefix, busy_srv.url, good_srv.url), tmp_path) as (a, b):
        until_dead_tried(a, busy, 1)
        time.sleep(0.5)  # a few sync rounds
        assert [ask(b) for _ in range(4)] == ["good"] * 4
        assert busy.attempts == 1, "B leaves the rate-limited deployment alone for the time it asked"


def test_off_keeps_each_replica_on_its_own(fakes, tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    dead, dead_srv = fakes()
    _good, good_srv = fakes()
    dead.default = Fault.error(500)
    with replicas(config(redis_url, key_prefix, dead_srv.url, good_srv.url, shared="off", failures=2), tmp_path) as (
        a,
        b,
    ):
        until_dead_tried(a, dead, 2)
        time.sleep(0.3)
        assert circuit(a) == "open" and circuit(b) == "closed"
        until_dead_tried(b, dead, 1)
