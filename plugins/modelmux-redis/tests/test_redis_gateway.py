"""The real gateway with ``[state] backend = "redis"``: it serves, it reports an unreachable
Redis on /health/ready, and the Redis password never shows in ``config show`` or the logs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis
from loguru import logger

from modelmux.testing import free_port, run_gateway


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    yield lines
    logger.remove(sink)


def test_gateway_with_redis_state_serves_and_is_ready(
    key_prefix: str, raw_redis: redis.Redis, acl_user: tuple[str, str], log_lines: list[str]
) -> None:
    user, password = acl_user
    url = f"redis://{user}:{password}@127.0.0.1:6379/0"
    config = {
        "state": {"backend": "redis", "url": url, "key_prefix": key_prefix},
        "cache": {"enabled": True, "backend": "redis", "url": url, "key_prefix": key_prefix},
    }
    with run_gateway(config) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        answer = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi redis"}])
        assert answer.choices[0].message.content == "hi redis"
        ready = httpx.get(f"{gw.root}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        # The readiness ping went over a connection authenticated as the URL's user.
        assert any(c.get("user") == user for c in raw_redis.client_list())
    assert any("redis state store" in line for line in log_lines)
    assert not any(password in line for line in log_lines)


def test_unreachable_redis_makes_ready_503_with_the_reason_not_a_hang(log_lines: list[str]) -> None:
    port = free_port()
    config = {
        "state": {
            "backend": "redis",
            "url": f"redis://:s3cret-pass@127.0.0.1:{port}/0",
            "socket_connect_timeout_seconds": 1,
        }
    }
    with run_gateway(config) as gw:
        ready = httpx.get(f"{gw.root}/health/ready", timeout=30)
        assert ready.status_code == 503
        problem = ready.json()["problems"]["state"]
        assert f"127.0.0.1:{port}" in problem and "ConnectionError" in problem and "Fix:" in problem
        assert "s3cret-pass" not in ready.text
        assert httpx.get(f"{gw.root}/health/live", timeout=10).status_code == 200
    assert not any("s3cret-pass" in line for line in log_lines)


def test_config_show_masks_the_redis_password(tmp_path: Path) -> None:
    path = tmp_path / "modelmux.toml"
    path.write_text(
        '[state]\nbackend = "redis"\nurl = "rediss://default:Sup3rS3cret@redis.example.com:6380/2"\n'
        'ssl_password = "keypass-123"\n[cache]\nbackend = "redis"\nurl = "redis://:Sup3rS3cret@cache:6379/0"\n'
    )
    cmd = [sys.executable, "-c", "from modelmux.cli import main; main()", "config", "show", "--config", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Sup3rS3cret" not in out.stdout + out.stderr and "keypass-123" not in out.stdout
    assert "rediss://default:***@redis.example.com:6380/2" in out.stdout
    assert "redis://:***@cache:6379/0" in out.stdout


def test_config_validate_rejects_a_bad_redis_setting(tmp_path: Path) -> None:
    path = tmp_path / "modelmux.toml"
    path.write_text('[state]\nbackend = "redis"\nurl = "redis://127.0.0.1:6379/0"\nssl_ca_certs = "/ca.pem"\n')
    cmd = [sys.executable, "-c", "from modelmux.cli import main; main()", "config", "validate", "--config", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "state.ssl_ca_certs: Value error, TLS options need a rediss:// url" in out.stderr
    assert "under [state]" in out.stderr
