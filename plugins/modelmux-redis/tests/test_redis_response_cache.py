"""The response cache on Redis: an answer stored by one gateway process is a hit in another."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
import tomli_w

from modelmux.testing import free_port, run_gateway


def test_two_gateway_processes_share_cached_answers(key_prefix: str, raw_redis: redis.Redis, tmp_path: Path) -> None:
    config = {
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo", "cache": True}},
        "state": {"backend": "memory"},
        "cache": {"backend": "redis", "url": "redis://127.0.0.1:6379/0", "key_prefix": key_prefix, "ttl_seconds": 60},
    }
    path = tmp_path / "modelmux.toml"
    path.write_text(tomli_w.dumps(config))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMUX_")}
    exe = str(Path(sys.executable).parent / "modelmux")
    proc = subprocess.Popen(
        [exe, "serve", "--config", str(path), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        root = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "modelmux serve exited"
            try:
                if httpx.get(f"{root}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("modelmux serve did not start")
                time.sleep(0.05)
        body = {"model": "echo", "messages": [{"role": "user", "content": "shared through redis"}]}
        first = httpx.post(f"{root}/v1/chat/completions", json=body)
        assert first.headers["x-modelmux-cache"] == "miss"
        with run_gateway(config) as gw:
            second = httpx.post(f"{gw.url}/chat/completions", json=body)
        assert second.headers["x-modelmux-cache"] == "hit"
        assert second.json() == first.json()
        keys = list(raw_redis.scan_iter(match=f"{key_prefix}cache:*"))
        assert len(keys) == 1 and 0 < raw_redis.ttl(keys[0]) <= 60
    finally:
        proc.terminate()
        proc.wait(15)
