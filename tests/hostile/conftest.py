"""One real ``modelmux serve`` process for the hostile-client tests, with a fake upstream on loopback.

The gateway serves an OpenAI-compatible provider (``vllm``) whose ``headers`` table carries
secrets, the ``echo`` provider, and a Claude provider (``claude``, Vertex) whose requests the
tests refuse before any call. The fake upstream answers chat completions, and by model name:
``quote-headers`` answers a 500 that quotes every request header back (as some proxies do),
``truncated`` answers a 200 whose JSON is cut short, ``anthropic-400`` / ``anthropic-529`` answer
in Anthropic's error shape. ``GET /v1/models`` (readiness, doctor) is a 500 quoting the headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from modelmux.testing import LoopbackServer, serve_aiohttp
from modelmux.testing.process import ServeProcess, serve_process

#: Secrets in the vllm provider's ``headers`` table: none of them may reach any output.
HEADER_SECRETS = {
    "X-Auth-Token": "xat-7f3c9e1d5b2a4c6e",
    "Proxy-Authorization": "Basic cHJveHk6czNjcjN0LXByb3h5",
    "X-Goog-Api-Key": "AIzaSyD-hostile-test-key-0042",
    "Ocp-Apim-Subscription-Key": "0f9e8d7c6b5a49382716a5b4c3d2e1f0",
}
API_KEY = "sk-hostile-client-key"


async def _chat(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    model = body.get("model")
    if model == "quote-headers":
        quoted = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
        return web.json_response(
            {"error": {"message": f"proxy failure, request headers were {quoted}", "type": "server_error"}},
            status=500,
        )
    if model in ("anthropic-400", "anthropic-529"):  # Anthropic's error shape, as an Anthropic-style proxy answers
        kind, status = ("invalid_request_error", 400) if model == "anthropic-400" else ("overloaded_error", 529)
        error = {"type": "error", "error": {"type": kind, "message": f"{kind} from the upstream"}}
        return web.json_response(error, status=status)
    if model == "truncated":
        return web.Response(
            body=b'{"id": "chatcmpl-1", "object": "chat.completion", "choi', content_type="application/json"
        )
    answer = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "fine", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return web.json_response(answer)


async def _models(request: web.Request) -> web.Response:
    """The readiness probe and ``modelmux doctor`` call this: it quotes the request headers too."""
    quoted = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
    return web.json_response(
        {"error": {"message": f"models unavailable, got {quoted}", "type": "server_error"}}, status=500
    )


def gateway_config(upstream_url: str) -> dict[str, Any]:
    return {
        # 1 s bounds so the slow-client tests are quick (defaults: docs/security.md)
        "server": {"api_keys": [API_KEY], "header_timeout_seconds": 1.0, "body_timeout_seconds": 1.0},
        "providers": {
            "vllm": {
                "type": "openai_compatible",
                "base_url": upstream_url + "/v1",
                "headers": HEADER_SECRETS,
                "max_retries": 0,
            },
            "echo": {"type": "echo"},
            "claude": {
                "type": "vertex",
                "project": "hostile-project",
                "region": "us-east5",
                "base_url": upstream_url,
                "max_retries": 0,
            },
        },
        "models": {"llama": {"provider": "vllm", "model": "llama"}, "echo": {"provider": "echo", "model": "echo"}},
    }


@pytest.fixture(scope="session")
def upstream() -> Iterator[LoopbackServer]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/responses", _chat)  # the vllm provider forwards Responses natively: errors only
    with serve_aiohttp(app) as server:
        yield server


@pytest.fixture(scope="session")
def served(upstream: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("hostile")
    config = gateway_config(upstream.url)
    config["state"] = {"backend": "disk", "path": str(tmp / "state")}
    with serve_process(config, tmp) as process:
        yield process


@pytest.fixture(scope="session")
def api(served: ServeProcess) -> Iterator[httpx.Client]:
    """Raw HTTP to the gateway with the client key."""
    with httpx.Client(base_url=served.root, headers={"authorization": f"Bearer {API_KEY}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def header_secrets() -> dict[str, str]:
    return HEADER_SECRETS
