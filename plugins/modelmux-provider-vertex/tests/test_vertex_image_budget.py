"""Image URLs under a per-request budget, end to end: a real ``modelmux serve`` process -> the
vertex plugin -> the fake Vertex AI, images from a loopback server listed in ``url_fetch_allow``.

The finding (issue 15): 30 image URLs of 19 MB each took a worker from 167 MB to 2.4 GB RSS.
The gateway's peak RSS (``VmHWM``) must stay under 600 MB whether such a request is refused or
served, each image is fetched once per request (not per retry or fallback), and a request over a
limit gets a 400 naming the limit and its setting.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
from aiohttp import web

from modelmux.testing import LoopbackServer, free_port, serve_aiohttp

MB = 1024 * 1024
PEAK_LIMIT_KB = 600 * 1024
#: What a request's images may leave behind (allocator slack, not the images: 2.3 GB before the fix).
AFTER_SLACK_KB = 150 * 1024
#: A 19 MB "PNG": the signature, then zeros (the fake Vertex does not decode images).
BIG = b"\x89PNG\r\n\x1a\n" + b"\0" * (19 * MB - 8)


def big_image_app() -> web.Application:
    """``/len/N.png``: 19 MB with a content-length; ``/chunked/N.png``: the same, chunked, none declared."""

    async def with_length(_: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="image/png")

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        view = memoryview(BIG)
        try:
            for at in range(0, len(BIG), MB):
                await resp.write(view[at : at + MB])
        except (ConnectionError, RuntimeError):
            return resp  # the gateway stopped reading: the budget was spent
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/len/{name}", with_length)
    app.router.add_get("/chunked/{name}", chunked)
    return app


@pytest.fixture(scope="module")
def big_images() -> Iterator[LoopbackServer]:
    with serve_aiohttp(big_image_app()) as server:
        yield server


class ServeProcess:
    """``modelmux serve`` in its own process, so its memory is its own."""

    def __init__(self, config: dict[str, Any], tmp: Path) -> None:
        self.baseline_kb = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path = tmp / "modelmux.toml"
        path.write_text(tomli_w.dumps(config))
        self.log = tmp / "serve.log"
        exe = Path(sys.executable).parent / "modelmux"
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--config", str(path), "--port", str(self.port)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        end = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"modelmux serve did not start:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)

    def memory_kb(self, field: str) -> int:
        """``VmHWM`` (peak RSS) or ``VmRSS`` of the server process, in kB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def reset_peak(self) -> None:
        """Start a new peak (Linux: writing 5 to clear_refs); where refused, peaks accumulate (stricter)."""
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            pass

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def gateway(shared_fake_vertex: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    server = ServeProcess(gateway_config(shared_fake_vertex), tmp_path_factory.mktemp("serve"))
    resp = httpx.post(f"{server.url}/v1/chat/completions", json=image_request([]), timeout=30)
    assert resp.status_code == 200, resp.text
    server.baseline_kb = server.memory_kb("VmRSS")  # warmed up: a request served
    yield server
    server.stop()


def gateway_config(fake_vertex: Any) -> dict[str, Any]:
    return {
        "server": {"url_fetch_allow": ["127.0.0.1"]},
        "state": {"backend": "memory"},
        "providers": {"claude": fake_vertex.provider_table(max_retries=1)},
        "models": {
            "claude-sonnet": {"provider": "claude", "model": "text@20250929"},
            # always failing (500, retryable): tried twice, then falls back to claude-sonnet. (A 529
            # would not be retried: its retry-after rests the deployment while a fallback can answer.)
            "overloaded": {"provider": "claude", "model": "error-500@1", "fallbacks": ["claude-sonnet"]},
        },
    }


def image_request(urls: list[str], model: str = "claude-sonnet", **extra: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "What is in these images?"}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {"model": model, "messages": [{"role": "user", "content": parts}], "max_tokens": 20, **extra}


def hits(server: LoopbackServer, prefix: str) -> int:
    return sum(1 for r in server.requests if r["path"].startswith(prefix))


def send(gateway: ServeProcess, body: dict[str, Any]) -> tuple[httpx.Response, int]:
    """POST the request; the answer and the server's peak RSS (kB) while serving it.

    Also checks that the memory is given back: nothing keeps the request's images afterwards."""
    gateway.reset_peak()
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=60)
    peak = gateway.memory_kb("VmHWM")
    limit = gateway.baseline_kb + AFTER_SLACK_KB
    end = time.monotonic() + 5
    after = gateway.memory_kb("VmRSS")
    while after >= limit and time.monotonic() < end:
        time.sleep(0.1)
        after = gateway.memory_kb("VmRSS")
    print(f"{resp.status_code}: peak RSS {peak // 1024} MB, then {after // 1024} MB")
    assert after < limit, f"RSS stays at {after // 1024} MB after the request (from {gateway.baseline_kb // 1024} MB)"
    return resp, peak


def test_thirty_19mb_images_are_refused_before_any_fetch(gateway: ServeProcess, big_images: LoopbackServer) -> None:
    before = hits(big_images, "/len/thirty-")
    urls = [f"{big_images.url}/len/thirty-{i}.png" for i in range(30)]
    resp, peak = send(gateway, image_request(urls))
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "too_many_images" and error["type"] == "invalid_request_error"
    assert "30 image URLs" in error["message"] and "at most 20" in error["message"]
    assert "server.images.max_per_request" in error["message"]
    assert hits(big_images, "/len/thirty-") == before  # nothing was fetched
    assert peak < PEAK_LIMIT_KB


@pytest.mark.parametrize("kind", ["len", "chunked"])
def test_the_byte_budget_stops_fetching(gateway: ServeProcess, big_images: LoopbackServer, kind: str) -> None:
    """20 images pass the count; 19 MB each passes the per-image limit; 50 MB in all stops the rest."""
    prefix = f"/{kind}/budget-"
    urls = [f"{big_images.url}{prefix}{i}.png" for i in range(20)]
    resp, peak = send(gateway, image_request(urls))
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "images_too_large" and error["param"] == "messages"
    assert f"more than {50 * MB} bytes" in error["message"] and "server.images.max_total_bytes" in error["message"]
    # fetched a few at a time, stopped once the budget was spent: far from all 20
    assert hits(big_images, prefix) <= 8
    assert peak < PEAK_LIMIT_KB


def test_an_image_named_three_times_counts_three_times(gateway: ServeProcess, big_images: LoopbackServer) -> None:
    url = f"{big_images.url}/len/thrice.png"
    resp, peak = send(gateway, image_request([url] * 3))  # 57 MB would go upstream
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "images_too_large"
    assert hits(big_images, "/len/thrice.png") <= 1
    assert peak < PEAK_LIMIT_KB


@pytest.mark.parametrize("stream", [False, True])
def test_images_within_the_budget_are_served(
    gateway: ServeProcess, big_images: LoopbackServer, shared_fake_vertex: Any, stream: bool
) -> None:
    urls = [f"{big_images.url}/len/served-{stream}-{i}.png" for i in range(2)]
    resp, peak = send(gateway, image_request(urls, stream=stream))
    assert resp.status_code == 200, resp.text
    if stream:
        assert resp.text.rstrip().endswith("data: [DONE]")
    else:
        assert resp.json()["choices"][0]["message"]["content"] == "Hello from Claude on Vertex."
    sent = shared_fake_vertex.last_body()["messages"][0]["content"]
    images = [b for b in sent if b["type"] == "image"]
    assert len(images) == 2
    for block in images:
        assert block["source"]["media_type"] == "image/png"
        assert base64.b64decode(block["source"]["data"]) == BIG
    assert peak < PEAK_LIMIT_KB


def test_images_are_fetched_once_per_request_across_retries_and_fallbacks(
    gateway: ServeProcess, big_images: LoopbackServer, shared_fake_vertex: Any
) -> None:
    urls = [f"{big_images.url}/len/retried-{i}.png" for i in range(2)]
    calls = len(shared_fake_vertex.predict_requests())
    resp, peak = send(gateway, image_request(urls, model="overloaded"))
    assert resp.status_code == 200, resp.text
    # two attempts on the failing model, then its fallback: three upstream calls, all with both images
    predicts = shared_fake_vertex.predict_requests()[calls:]
    assert len(predicts) == 3 and "text@" in predicts[-1]["path"]
    for predict in predicts:  # every attempt carried both images
        assert len(predict["body"]) > 2 * len(BIG) * 4 // 3
    assert [hits(big_images, f"/len/retried-{i}.png") for i in range(2)] == [1, 1]
    assert peak < PEAK_LIMIT_KB


def test_an_ipv4_address_inside_ipv6_is_refused(gateway: ServeProcess, big_images: LoopbackServer) -> None:
    # 127.0.0.1 through NAT64's well-known prefix: refused although 127.0.0.1 is in url_fetch_allow
    # (the host as written is the IPv6 literal, which is not)
    for host in ("[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::127.0.0.1]"):
        resp = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=image_request([f"http://{host}:{big_images.port}/len/x.png"]),
            timeout=30,
        )
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["code"] == "image_url_blocked" and "server.url_fetch_allow" in error["message"]
    assert hits(big_images, "/len/x.png") == 0
