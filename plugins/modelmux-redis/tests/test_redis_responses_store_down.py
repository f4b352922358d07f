"""A state store that is down, or that refuses writes, behind a real ``modelmux serve``:
``store: true`` is refused before the upstream spends tokens when the store does not answer,
and an answer whose write fails afterwards still reaches the client, with a warning header."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import redis

from modelmux.testing import free_port

KEY = "k-store-down"


@contextmanager
def serve(tmp: Path, state: str) -> Iterator[str]:
    """One ``modelmux serve`` with the echo provider and this ``[state]`` table; yields its root URL."""
    port = free_port()
    config = tmp / f"gw-{port}.toml"
    config.write_text(
        f"""
[server]
api_keys = ["{KEY}"]

[state]
{state}

[providers.echo]
type = "echo"

[models.echo]
provider = "echo"
model = "echo"
"""
    )
    log = tmp / f"gw-{port}.log"
    cmd = [sys.executable, "-m", "modelmux", "serve", "--config", str(config), "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{root}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        yield root
    finally:
        proc.terminate()
        proc.wait(15)


def upstream_calls(root: str) -> int:
    """Requests the echo provider answered (modelmux_provider_requests_total)."""
    text = httpx.get(f"{root}/metrics").text
    found = re.findall(r'^modelmux_provider_requests_total\{[^}]*provider="echo"[^}]*\} (\S+)$', text, re.M)
    return int(sum(float(v) for v in found))


def post(root: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{root}/v1/responses", json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=30)


def test_store_down_is_a_503_before_the_upstream_and_store_false_still_works(tmp_path: Path) -> None:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    with serve(tmp_path, f'backend = "redis"\nurl = "{nothing_listens}"\nkey_prefix = "mmtest-down:"') as root:
        assert post(root, {"model": "echo", "input": "warm up", "store": False}).status_code == 200
        before = upstream_calls(root)
        assert before >= 1
        refused = post(root, {"model": "echo", "input": "keep this"})
        assert refused.status_code == 503
        err = refused.json()["error"]
        assert err["code"] == "store_unavailable" and "127.0.0.1" in err["message"]
        assert upstream_calls(root) == before  # no tokens spent on an answer that could not be kept
        client = openai.OpenAI(base_url=f"{root}/v1", api_key=KEY, max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.responses.create(model="echo", input="through the SDK")
        assert client.responses.create(model="echo", input="not kept", store=False).output_text == "not kept"


@pytest.fixture
def read_only_user(raw_redis: redis.Redis, key_prefix: str) -> Iterator[tuple[str, str]]:
    """A Redis user that may read this test's keys but not write them (a store whose writes fail)."""
    name, password = f"mmtest-ro-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    raw_redis.execute_command("ACL", "SETUSER", name, "on", f">{password}", f"~{key_prefix}*", "+@all", "-@write")
    yield name, password
    raw_redis.execute_command("ACL", "DELUSER", name)


def test_a_write_that_fails_after_the_answer_returns_it_with_a_warning(
    tmp_path: Path, redis_url: str, key_prefix: str, read_only_user: tuple[str, str]
) -> None:
    user, password = read_only_user
    url = redis_url.replace("redis://", f"redis://{user}:{password}@")
    # No quota: the check before the upstream is a PING, which a read-only user may send.
    state = f'backend = "redis"\nurl = "{url}"\nkey_prefix = "{key_prefix}"\nmax_bytes_per_key = 0'
    with serve(tmp_path, state) as root:
        before = upstream_calls(root)
        r = post(root, {"model": "echo", "input": "answered anyway"})
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["content"][0]["text"] == "answered anyway"
        warning = r.headers["x-modelmux-store-warning"]
        assert "not stored" in warning and "previous_response_id" in warning
        assert password not in warning
        assert upstream_calls(root) == before + 1
        client = openai.OpenAI(base_url=f"{root}/v1", api_key=KEY, max_retries=0)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(r.json()["id"])
    log = "".join(p.read_text() for p in tmp_path.glob("gw-*.log"))
    assert f"could not store response {r.json()['id']}" in log
    assert password not in log


def test_a_store_refusing_writes_with_a_quota_is_refused_before_the_upstream(
    tmp_path: Path, redis_url: str, key_prefix: str, read_only_user: tuple[str, str]
) -> None:
    user, password = read_only_user
    url = redis_url.replace("redis://", f"redis://{user}:{password}@")
    with serve(tmp_path, f'backend = "redis"\nurl = "{url}"\nkey_prefix = "{key_prefix}"') as root:
        before = upstream_calls(root)
        refused = post(root, {"model": "echo", "input": "would be lost"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "store_unavailable"
        assert password not in refused.text
        assert upstream_calls(root) == before
