"""`modelmux serve --workers 2`: /metrics counts every worker's requests (multiprocess mode);
log lines name the worker that wrote them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from modelmux.testing import free_port

MIN_REQUESTS = 12
MAX_REQUESTS = 200


def _start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    config = {
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo"}},
        "state": {"backend": "memory"},
    }
    path = tmp_path / "modelmux.toml"
    path.write_text(tomli_w.dumps(config))
    port = free_port()
    exe = str(Path(sys.executable).parent / "modelmux")
    proc = subprocess.Popen(
        [exe, "serve", "--config", str(path), "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"modelmux serve exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{root}/health/live", timeout=1).status_code == 200:
                return proc, root
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("modelmux serve --workers 2 did not start in 60 s")


def _chat_total(root: str) -> float:
    text = httpx.get(f"{root}/metrics").text
    found = re.search(
        r'^modelmux_http_requests_total\{endpoint="/v1/chat/completions",method="POST",status="200"\} (\S+)$',
        text,
        re.M,
    )
    return float(found.group(1)) if found else 0.0


def test_metrics_add_up_across_two_workers(tmp_path: Path) -> None:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith(("MODELMUX_", "PROMETHEUS_"))}
    proc, root = _start(tmp_path, env)
    pids: set[int] = set()
    sent = 0
    try:
        # /health/live answers once one worker is up; under load the second may take a while.
        deadline = time.monotonic() + 60
        seen: set[int] = set()
        while len(seen) < 2 and time.monotonic() < deadline:
            with httpx.Client() as client:
                seen.add(client.get(f"{root}/health").json()["worker_pid"])
        body = {"model": "echo", "messages": [{"role": "user", "content": "hello"}]}
        # A new connection each time, so that both workers take some; on until both did (bounded).
        while sent < MIN_REQUESTS or (len(pids) < 2 and sent < MAX_REQUESTS):
            with httpx.Client() as client:
                assert client.post(f"{root}/v1/chat/completions", json=body).status_code == 200
                pids.add(client.get(f"{root}/health").json()["worker_pid"])
            sent += 1
        # Whichever worker answers the scrape, it reports every worker's count.
        assert {_chat_total(root) for _ in range(6)} == {sent}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert len(pids) == 2, "the kernel gave every connection to one worker; the sum proved nothing"
    # Each request line names the worker that wrote it: the pid its /health reports.
    chat_lines = [line for line in err.splitlines() if "POST /v1/chat/completions -> 200" in line]
    assert len(chat_lines) == sent, err
    assert {int(re.findall(r"worker_pid=(\d+)", line)[-1]) for line in chat_lines} == pids
    made = re.search(r"multiprocess mode for 2 workers, samples in (\S+)", err)
    assert made is not None, err
    assert not Path(made.group(1)).exists()  # removed when the server stopped
