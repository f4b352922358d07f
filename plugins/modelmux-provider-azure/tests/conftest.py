"""A fake Azure OpenAI resource on loopback: classic deployments (api-version) and the v1 API.

It checks the ``api-key`` header (or an Entra ``Bearer`` token it issued from its own
App Service managed-identity endpoint), the path and the query string, and answers
like Azure does: a leading ``prompt_filter_results`` stream event, content-filter
errors and finish reasons. The deployment name picks a scenario.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from modelmux.testing import LoopbackServer, fake_embeddings_answer, upstream_fixture

API_KEY = "azure-key-123"
API_VERSION = "2024-10-21"
ENTRA_TOKEN = "entra-token-xyz"
IDENTITY_HEADER = "identity-secret"

FILTER_RESULTS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def _err(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def completion(model: str, finish: str) -> dict[str, Any]:
    content = None if finish == "content_filter" else "Hello from Azure"
    return {
        "id": "chatcmpl-az1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_1",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
                "content_filter_results": FILTER_RESULTS,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }


def stream_frames(body: dict[str, Any], finish: str) -> list[bytes]:
    def chunk(delta: dict[str, Any], fin: str | None = None) -> bytes:
        payload = {
            "id": "chatcmpl-az1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": fin}],
        }
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    # What Azure sends first: prompt filter results in an event with an empty id and no choices.
    first = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}],
    }
    frames = [b"data: " + orjson.dumps(first) + b"\n\n", chunk({"role": "assistant", "content": ""})]
    if finish != "content_filter":
        frames += [chunk({"content": "Hello"}), chunk({"content": " from Azure"})]
    frames.append(chunk({}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {
            "id": "chatcmpl-az1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-4o-2024-08-06",
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        }
        frames.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


#: Deployments of an embedding model on the fake (any other deployment is a chat model).
EMBEDDING_DEPLOYMENTS = ("embed-small-prod",)


def make_app() -> web.Application:
    app = web.Application()

    def check_auth(request: web.Request) -> web.Response | None:
        if request.headers.get("api-key") == API_KEY:
            return None
        if request.headers.get("authorization") == f"Bearer {ENTRA_TOKEN}":
            return None
        return _err(
            401,
            {
                "error": {
                    "code": "401",
                    "message": "Access denied due to invalid subscription key or wrong API endpoint.",
                }
            },
        )

    def check_version(request: web.Request, v1: bool) -> web.Response | None:
        version = request.query.get("api-version")
        if v1 and version is not None:
            return _err(400, {"error": {"code": "BadRequest", "message": "api-version is not allowed on /openai/v1"}})
        if not v1 and version is None:
            return _err(404, {"error": {"code": "404", "message": "Resource not found"}})
        return None

    async def answer(request: web.Request, deployment: str, body: dict[str, Any]) -> web.StreamResponse:
        if deployment == "missing":
            return _err(
                404,
                {
                    "error": {
                        "code": "DeploymentNotFound",
                        "message": "The API deployment for this resource does not exist.",
                    }
                },
            )
        if deployment == "filtered":
            return _err(
                400,
                {
                    "error": {
                        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                        "management policy.",
                        "type": None,
                        "param": "prompt",
                        "code": "content_filter",
                        "status": 400,
                        "innererror": {
                            "code": "ResponsibleAIPolicyViolation",
                            "content_filter_result": {
                                **FILTER_RESULTS,
                                "violence": {"filtered": True, "severity": "high"},
                            },
                        },
                    }
                },
            )
        finish = "content_filter" if deployment == "filtered-output" else "stop"
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(completion(deployment, finish)), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for frame in stream_frames(body, finish):
            await resp.write(frame)
        await resp.write_eof()
        return resp

    async def classic_chat(request: web.Request) -> web.StreamResponse:
        denied = check_auth(request) or check_version(request, v1=False)
        if denied:
            return denied
        return await answer(request, request.match_info["deployment"], orjson.loads(await request.read()))

    async def v1_chat(request: web.Request) -> web.StreamResponse:
        denied = check_auth(request) or check_version(request, v1=True)
        if denied:
            return denied
        body = orjson.loads(await request.read())
        return await answer(request, body["model"], body)

    async def responses(request: web.Request) -> web.StreamResponse:
        v1 = request.path.startswith("/openai/v1/")
        denied = check_auth(request) or check_version(request, v1=v1)
        if denied:
            return denied
        if not v1 and request.query["api-version"] < "2025-03-01-preview":
            return _err(404, {"error": {"code": "404", "message": "Resource not found"}})
        body = orjson.loads(await request.read())
        data = {
            "id": "resp_az1",
            "object": "response",
            "created_at": 1700000000,
            "status": "completed",
            "model": body["model"],
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello from Azure responses", "annotations": []}],
                }
            ],
            "usage": {"input_tokens": 4, "output_tokens": 4, "total_tokens": 8},
        }
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(data), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for name, payload in (
            (
                "response.created",
                {"type": "response.created", "response": {**data, "status": "in_progress", "output": []}},
            ),
            ("response.completed", {"type": "response.completed", "response": data}),
        ):
            await resp.write(f"event: {name}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n")
        await resp.write_eof()
        return resp

    async def models(request: web.Request) -> web.Response:
        denied = check_auth(request) or check_version(request, v1=request.path.startswith("/openai/v1/"))
        if denied:
            return denied
        return web.json_response(
            {"object": "list", "data": [{"id": "gpt-4o", "object": "model"}, {"id": "gpt-4.1-mini", "object": "model"}]}
        )

    async def msi_token(request: web.Request) -> web.Response:
        # App Service managed identity: what azure-identity's ManagedIdentityCredential calls.
        if request.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            return web.json_response({"error": "bad identity header"}, status=401)
        assert request.query["resource"] == "https://cognitiveservices.azure.com"
        return web.json_response(
            {
                "access_token": ENTRA_TOKEN,
                "expires_on": "4102444800",
                "resource": request.query["resource"],
                "token_type": "Bearer",
            }
        )

    async def embeddings(request: web.Request, deployment: str, body: dict[str, Any]) -> web.Response:
        if deployment not in EMBEDDING_DEPLOYMENTS:
            return _err(
                400,
                {
                    "error": {
                        "code": "OperationNotSupported",
                        "message": "The embeddings operation does not work with the specified model, gpt-4o. "
                        "Please choose different model and try again.",
                    }
                },
            )
        # Azure names the base model, not the deployment, in its answer.
        answer = fake_embeddings_answer(body, model="text-embedding-3-small", dimensions=6)
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def classic_embeddings(request: web.Request) -> web.Response:
        denied = check_auth(request) or check_version(request, v1=False)
        if denied:
            return denied
        return await embeddings(request, request.match_info["deployment"], orjson.loads(await request.read()))

    async def v1_embeddings(request: web.Request) -> web.Response:
        denied = check_auth(request) or check_version(request, v1=True)
        if denied:
            return denied
        body = orjson.loads(await request.read())
        return await embeddings(request, body["model"], body)

    app.router.add_post("/openai/deployments/{deployment}/embeddings", classic_embeddings)
    app.router.add_post("/openai/v1/embeddings", v1_embeddings)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", classic_chat)
    app.router.add_post("/openai/v1/chat/completions", v1_chat)
    app.router.add_post("/openai/responses", responses)
    app.router.add_post("/openai/v1/responses", responses)
    app.router.add_get("/openai/models", models)
    app.router.add_get("/openai/v1/models", models)
    app.router.add_get("/msi/token", msi_token)
    return app


fake_azure = upstream_fixture(make_app)


@pytest.fixture
def start_fake_azure(serve_upstream: Callable[[web.Application], LoopbackServer]) -> Callable[[], LoopbackServer]:
    """``start_fake_azure()``: a fresh fake for one test; ``fake.stop()`` takes it down before the end."""
    return lambda: serve_upstream(make_app())
