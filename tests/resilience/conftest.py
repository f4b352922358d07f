"""Fixtures for the resilience tests: fault-injecting upstreams (served to the real
``openai_compatible`` provider plugin), leak checks on a running gateway, real serve processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from modelmux.testing import LoopbackServer, RunningGateway, free_port, serve_aiohttp
from modelmux.testing.faults import FaultyUpstream


@pytest.fixture
def upstreams() -> Iterator[Callable[[], tuple[FaultyUpstream, LoopbackServer]]]:
    """Start fault-injecting upstreams on demand; all stop at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start() -> tuple[FaultyUpstream, LoopbackServer]:
            up = FaultyUpstream()
            server = stack.enter_context(serve_aiohttp(up.app()))
            return up, server

        yield start


@pytest.fixture
def refused_url() -> str:
    """A loopback base URL where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}/v1"


def provider_table(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "openai_compatible", "base_url": base_url, **extra}


@pytest.fixture
def table() -> Callable[..., dict[str, Any]]:
    return provider_table


async def _gateway_snapshot() -> dict[str, int]:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    return {"tasks": len(tasks)}


def gateway_load(gw: RunningGateway) -> dict[str, int]:
    """What a gateway holds right now: tasks, upstream connections in use, requests in flight."""
    gateway = gw.gateway
    snap: dict[str, int] = gw.run(_gateway_snapshot())
    connector = gateway.http.connector
    assert isinstance(connector, aiohttp.TCPConnector)
    snap["upstream_connections_in_use"] = len(connector._acquired)
    snap["inflight"] = sum(s.inflight for s in gateway.router.balancer.states().values())
    return snap


@pytest.fixture
def load() -> Callable[[RunningGateway], dict[str, int]]:
    return gateway_load


@pytest.fixture
def settle() -> Callable[[Callable[[], bool]], bool]:
    """Wait (up to 5 s) until a condition holds; the condition's last value."""
    import time

    def wait(cond: Callable[[], bool], seconds: float = 5.0) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.01)
        return cond()

    return wait


class ServeProcess:
    """A real ``modelmux serve`` subprocess on a free loopback port."""

    def __init__(self, config_text: str, tmp: Any, name: str = "gw") -> None:
        import subprocess
        import sys
        from pathlib import Path

        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        path = Path(tmp) / f"{name}.toml"
        path.write_text(config_text)
        self.log = Path(tmp) / f"{name}.log"
        exe = Path(sys.executable).parent / "modelmux"
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--config", str(path), "--port", str(self.port)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, seconds: float = 30) -> None:
        import time

        import httpx

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"modelmux serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.root}/health/live", timeout=1).status_code == 200:
                    # On a machine shared with other test runs the free port may have been taken
                    # before this server bound it: make sure it is this process that answers.
                    pid = httpx.get(f"{self.root}/health", timeout=10).json().get("worker_pid")
                    if pid != self.proc.pid:
                        raise RuntimeError(f"port {self.port} answers for another process ({pid})")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"modelmux serve did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def serve(tmp_path: Any) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(config_text: str, name: str = "gw") -> ServeProcess:
        p = ServeProcess(config_text, tmp_path, name)
        started.append(p)
        p.wait_ready()
        return p

    yield start
    for p in started:
        p.stop()
