"""The exact-match response cache, through the real gateway in front of a fake upstream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import LoopbackServer, free_port, run_gateway

MSGS = [{"role": "user", "content": "the answer please"}]


def _config(upstream: LoopbackServer, h: Any, **cache: Any) -> dict[str, Any]:
    return {
        "providers": {"up": {"type": "fakeoai", "base_url": f"{upstream.url}/v1", "max_retries": 0}},
        "models": {
            "cached": {"provider": "up", "model": "upstream-m", "cache": True},
            "plain": {"provider": "up", "model": "upstream-m"},
        },
        "state": {"backend": "memory"},
        "cache": {"backend": "memory", **cache},
    }


def _chat(gw: Any, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    payload = {"model": "cached", "messages": MSGS, **body}
    return httpx.post(f"{gw.url}/chat/completions", json=payload, headers=headers or {})


def test_an_identical_request_is_answered_from_the_cache(upstream: LoopbackServer, h: Any) -> None:
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        before = h.read_metrics(gw.root)
        first = _chat(gw, temperature=0)
        second = _chat(gw, temperature=0, user="someone-else")  # `user` is not part of the key
        assert h.chat_calls(upstream) == 1
        assert (first.headers["x-modelmux-cache"], second.headers["x-modelmux-cache"]) == ("miss", "hit")
        assert second.json() == first.json() and second.headers["x-modelmux-provider"] == "up"

        assert _chat(gw, temperature=0.5).headers["x-modelmux-cache"] == "miss"  # a changed field
        assert h.chat_calls(upstream) == 2
        _chat(gw, temperature=0, messages=[{"role": "user", "content": "another question"}])
        assert h.chat_calls(upstream) == 3

        plain = _chat(gw, model="plain")  # a model without cache = true
        assert "x-modelmux-cache" not in plain.headers
        _chat(gw, model="plain")
        assert h.chat_calls(upstream) == 5
        after = h.read_metrics(gw.root)
    hits = h.sample(after, "modelmux_cache_requests_total", result="hit")
    misses = h.sample(after, "modelmux_cache_requests_total", result="miss")
    assert hits - h.sample(before, "modelmux_cache_requests_total", result="hit") == 1
    assert misses - h.sample(before, "modelmux_cache_requests_total", result="miss") == 3


def test_a_streamed_request_that_hits_is_answered_as_a_stream(upstream: LoopbackServer, h: Any) -> None:
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        answers = []
        for _ in range(2):
            raw = client.chat.completions.with_raw_response.create(
                model="cached", messages=MSGS, stream=True, stream_options={"include_usage": True}
            )
            assert raw.headers["content-type"].startswith("text/event-stream")
            chunks = list(raw.parse())
            answers.append(
                (
                    raw.headers["x-modelmux-cache"],
                    "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                    chunks[-1].usage,
                )
            )
        assert h.chat_calls(upstream) == 1
        assert answers[0][0] == "miss" and answers[1][0] == "hit"
        assert answers[0][1] == answers[1][1] == "the answer please"
        assert answers[1][2] is not None and answers[1][2].completion_tokens == 3
        # A JSON request is a different entry from a streamed one.
        assert _chat(gw).headers["x-modelmux-cache"] == "miss"


def test_a_stream_that_failed_is_not_stored(upstream: LoopbackServer, h: Any) -> None:
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        upstream.app["fail"].append(500)
        assert _chat(gw, stream=True).status_code == 502
        assert _chat(gw, stream=True).headers["x-modelmux-cache"] == "miss"
        assert _chat(gw, stream=True).headers["x-modelmux-cache"] == "hit"
        assert h.chat_calls(upstream) == 2


def test_the_request_header_uses_skips_or_refreshes(upstream: LoopbackServer, h: Any) -> None:
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        assert _chat(gw, {"x-modelmux-cache": "use"}, model="plain").headers["x-modelmux-cache"] == "miss"
        assert _chat(gw, {"x-modelmux-cache": "use"}, model="plain").headers["x-modelmux-cache"] == "hit"
        assert h.chat_calls(upstream) == 1

        # The key holds the resolved deployment: "cached" names the same one as "plain".
        assert _chat(gw).headers["x-modelmux-cache"] == "hit"
        skipped = _chat(gw, {"x-modelmux-cache": "skip"})
        assert "x-modelmux-cache" not in skipped.headers and h.chat_calls(upstream) == 2
        refreshed = _chat(gw, {"x-modelmux-cache": "refresh"})
        assert refreshed.headers["x-modelmux-cache"] == "miss" and h.chat_calls(upstream) == 3
        hit = _chat(gw)
        assert hit.headers["x-modelmux-cache"] == "hit" and hit.json()["id"] == refreshed.json()["id"]

        bad = _chat(gw, {"x-modelmux-cache": "sometimes"})
        assert bad.status_code == 400
        assert "x-modelmux-cache" in bad.json()["error"]["message"]


def test_entries_expire_after_the_ttl(upstream: LoopbackServer, h: Any) -> None:
    with run_gateway(_config(upstream, h, ttl_seconds=0.3), plugins=h.plugins) as gw:
        assert _chat(gw).headers["x-modelmux-cache"] == "miss"
        assert _chat(gw).headers["x-modelmux-cache"] == "hit"
        time.sleep(0.4)
        assert _chat(gw).headers["x-modelmux-cache"] == "miss"
        assert h.chat_calls(upstream) == 2


def test_answers_over_the_size_bound_are_not_stored(upstream: LoopbackServer, h: Any) -> None:
    with run_gateway(_config(upstream, h, max_entry_bytes=100), plugins=h.plugins) as gw:
        _chat(gw)
        assert _chat(gw).headers["x-modelmux-cache"] == "miss"
        assert h.chat_calls(upstream) == 2


def test_the_disk_cache_is_shared_by_two_processes(upstream: LoopbackServer, h: Any, tmp_path: Path) -> None:
    """A `modelmux serve` process stores an answer; the test process's own gateway reads it."""
    config = {
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo", "cache": True}},
        "state": {"backend": "memory"},
        "cache": {"backend": "disk", "path": str(tmp_path / "cache")},
    }
    import tomli_w

    path = tmp_path / "modelmux.toml"
    path.write_text(tomli_w.dumps(config))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMUX_")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "modelmux"), "serve", "--config", str(path), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        root = f"http://127.0.0.1:{port}"
        _wait_live(root, proc)
        body = {"model": "echo", "messages": [{"role": "user", "content": "shared between processes"}]}
        first = httpx.post(f"{root}/v1/chat/completions", json=body)
        assert first.headers["x-modelmux-cache"] == "miss"
        with run_gateway(config) as gw:
            second = httpx.post(f"{gw.url}/chat/completions", json=body)
        assert second.headers["x-modelmux-cache"] == "hit"
        assert second.json()["id"] == first.json()["id"]
    finally:
        proc.terminate()
        proc.wait(15)


def _wait_live(root: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"modelmux serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{root}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail("modelmux serve did not start in 30 s")
