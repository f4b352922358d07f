"""Two ModelMux processes sharing one Redis: a Responses conversation started on one
continues on the other (``previous_response_id``), with the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import redis

from modelmux.testing import free_port, validate


@contextmanager
def gateway_processes(config: Path, tmp: Path, count: int) -> Iterator[list[str]]:
    """``count`` ``modelmux serve`` processes started together; yields their base URLs once all are ready."""
    procs, roots, logs = [], [], []
    try:
        for n in range(count):
            port = free_port()
            logs.append((tmp / f"gateway-{n}.log").open("w"))
            env = dict(os.environ, MODELMUX_SERVER__PORT=str(port))
            cmd = [sys.executable, "-m", "modelmux", "serve", "--config", str(config)]
            procs.append(subprocess.Popen(cmd, stdout=logs[-1], stderr=logs[-1], env=env))
            roots.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for n, (proc, root) in enumerate(zip(procs, roots, strict=True)):
            while True:
                assert proc.poll() is None, (tmp / f"gateway-{n}.log").read_text()
                try:
                    if httpx.get(f"{root}/health/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the gateway did not become ready"
                time.sleep(0.1)
        yield [f"{root}/v1" for root in roots]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
        for log in logs:
            log.close()


def test_a_conversation_continues_on_another_process_sharing_redis(
    tmp_path: Path, redis_url: str, key_prefix: str, raw_redis: redis.Redis
) -> None:
    config = tmp_path / "modelmux.toml"
    config.write_text(
        f"""
[server]
api_keys = ["k-one"]

[state]
backend = "redis"
url = "{redis_url}"
key_prefix = "{key_prefix}"
ttl_seconds = 120

[providers.echo]
type = "echo"

[models.echo]
provider = "echo"
model = "echo"
"""
    )
    with gateway_processes(config, tmp_path, 2) as (first, second):
        a = openai.OpenAI(base_url=first, api_key="k-one", max_retries=0)
        b = openai.OpenAI(base_url=second, api_key="k-one", max_retries=0)
        r1 = a.responses.create(model="echo", input="started on the first")
        r2 = b.responses.create(model="echo", input="continued on the second", previous_response_id=r1.id)
        assert r2.previous_response_id == r1.id and r2.output_text == "continued on the second"
        # echo counts the words of every message it was sent: the second process sent the first's turn too
        assert r2.usage is not None and r2.usage.input_tokens == 4 + 4 + 4
        with a.responses.stream(model="echo", input="back on the first", previous_response_id=r2.id) as stream:
            r3 = stream.get_final_response()
        body = httpx.get(f"{second}/responses/{r3.id}", headers={"authorization": "Bearer k-one"}).json()
        validate("Response", body)
        assert body["previous_response_id"] == r2.id
        assert [i.id for i in b.responses.input_items.list(r2.id)] == [
            i.id for i in a.responses.input_items.list(r2.id)
        ]
        b.responses.delete(r1.id)
        with pytest.raises(openai.NotFoundError):
            a.responses.create(model="echo", input="x", previous_response_id=r1.id)
    # the values live in Redis under the configured prefix, with the state TTL; the per-key
    # quota counters one quota bucket (ttl / 4) longer, so they outlive what they count
    keys = list(raw_redis.scan_iter(match=f"{key_prefix}*"))
    responses = [k for k in keys if b":responses:v1:" in k]
    quotas = [k for k in keys if b":responses:quota:" in k]
    assert len(responses) == 2 and quotas and len(responses) + len(quotas) == len(keys)
    assert all(0 < raw_redis.ttl(k) <= 120 for k in responses)
    assert all(0 < raw_redis.ttl(k) <= 120 + 30 + 1 for k in quotas)
