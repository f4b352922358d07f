"""A fake Bedrock runtime on loopback, and the fixtures the bedrock tests share.

The fake checks every request the way AWS does: it recomputes the SigV4 signature
with botocore from the known test credentials (canonical request from the raw path,
the signed headers and the body) and answers a mismatch with AWS's 403 shape. It
answers ConverseStream with real event-stream frames built here with struct and
zlib.crc32, cut at awkward places so the client must decode incrementally.

Scenarios are chosen by model id: ``throttled``, ``invalid``, ``denied``,
``midstream-error``, ``cut-short``, ``bad-crc``; any other id answers from the request (echo of
the last user text, tool calls when tools are offered, a description of images). Extended
thinking (``additionalModelRequestFields.thinking``) is checked as Bedrock does for Claude
(shape, budget below ``maxTokens``, no temperature, no forced tool; refused for other models)
and answered with a ``reasoningContent`` block first.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from modelmux.testing import LoopbackServer, RunningGateway, run_gateway, upstream_fixture

REGION = "us-west-2"
ACCESS_KEY = "AKIAMODELMUXTEST0001"
SECRET_KEY = "modelmux/test+secret/key0123456789abcdef"
#: A second pair (with a session token), as a refreshed credential set would be.
ACCESS_KEY_2 = "ASIAMODELMUXTEST0002"
SECRET_KEY_2 = "second/test+secret/key0123456789abcdef"
SESSION_TOKEN_2 = "session-token-two"
API_KEY = "bedrock-api-key-for-tests"
KEYS = {ACCESS_KEY: (SECRET_KEY, None), ACCESS_KEY_2: (SECRET_KEY_2, SESSION_TOKEN_2)}

#: 1x1 red PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


# --- event-stream frames, by the spec: prelude (total length, headers length, CRC), headers, payload, CRC


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, orjson.dumps({**payload, "p": "abcdefgh"}))  # Bedrock pads events with "p"


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, orjson.dumps({"message": message}))


# --- what the fake answers


@dataclass
class Reply:
    blocks: list[dict[str, Any]] = field(default_factory=list)
    stop: str = "end_turn"
    input_tokens: int = 7


def aws_error(status: int, name: str, message: str) -> web.Response:
    return web.json_response(
        {"message": message},
        status=status,
        headers={
            "x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-RequestId": "00000000-0000-0000-0000-000000000000",
        },
    )


def check_signature(request: web.Request, body: bytes) -> web.Response | None:
    """None when the request is authentic, else AWS's error answer."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        if hmac.compare_digest(auth[7:], API_KEY):
            return None
        return aws_error(
            403, "UnrecognizedClientException", "Invalid API Key format: Must start with pre-defined prefix"
        )
    match = _AUTH.match(auth)
    if match is None:
        return aws_error(403, "IncompleteSignatureException", "Authorization header requires 'Credential' parameter.")
    if match["key"] not in KEYS:
        return aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    secret, token = KEYS[match["key"]]
    amz_date = request.headers.get("X-Amz-Date", "")
    signed = match["signed"].split(";")
    problems = []
    if match["service"] != "bedrock" or match["region"] != REGION:
        problems.append(f"Credential should be scoped to correct service/region: 'bedrock' in '{REGION}'")
    if "host" not in signed or "x-amz-date" not in signed or not amz_date.startswith(match["date"]):
        problems.append("host and x-amz-date must be signed and match the credential date")
    if token is not None and request.headers.get("X-Amz-Security-Token") != token:
        return aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    if problems:
        return aws_error(403, "InvalidSignatureException", "; ".join(problems))
    then = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if abs(time.time() - then.timestamp()) > 300:
        return aws_error(403, "InvalidSignatureException", "Signature expired: the request time is too skewed")
    # Recompute: the raw path as received, the headers the client says it signed, the body.
    url = f"{request.scheme}://{request.host}{request.raw_path}"
    aws = AWSRequest(method=request.method, url=url, data=body, headers={h: request.headers.get(h, "") for h in signed})
    aws.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(match["key"], secret, token), "bedrock", REGION)
    expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
    if not hmac.compare_digest(expected, match["sig"]):
        return aws_error(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.",
        )
    return None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return " ".join(b["text"] for b in message["content"] if "text" in b)
    return ""


def thinking_problem(model: str, body: dict[str, Any]) -> str | None:
    """What Bedrock would refuse in a request's extended-thinking fields (Claude only)."""
    extra = body.get("additionalModelRequestFields")
    if extra is None:
        return None
    if "anthropic.claude" not in model:
        return f"The model returned the following errors: extraneous key [{next(iter(extra), '')}] is not permitted"
    thinking = extra.get("thinking")
    if set(extra) != {"thinking"} or not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return "The model returned the following errors: thinking: expected {type: enabled, budget_tokens}"
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return "The model returned the following errors: thinking.budget_tokens: Input should be >= 1024"
    inference = body.get("inferenceConfig") or {}
    if not isinstance(inference.get("maxTokens"), int) or inference["maxTokens"] <= budget:
        return "The model returned the following errors: `max_tokens` must be greater than `thinking.budget_tokens`"
    if inference.get("temperature", 1) != 1:
        return "The model returned the following errors: `temperature` may only be set to 1 when thinking is enabled"
    if set((body.get("toolConfig") or {}).get("toolChoice") or {}) & {"any", "tool"}:
        return "The model returned the following errors: Thinking may not be enabled when tool_choice forces tool use."
    return None


def answer(body: dict[str, Any]) -> Reply:
    """What the fake model says to a Converse request."""
    reply = _answer(body)
    if "additionalModelRequestFields" in body:  # extended thinking: a reasoning block first
        text = f"Thinking about: {_last_user_text(body['messages'])}"
        thought = {"reasoningText": {"text": text, "signature": "c2ln"}}
        reply.blocks.insert(0, {"reasoningContent": thought})
    return reply


def _answer(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    last = messages[-1]["content"]
    tool_config = body.get("toolConfig") or {}
    tools = [t["toolSpec"]["name"] for t in tool_config.get("tools", [])]
    choice = tool_config.get("toolChoice") or {}
    text = _last_user_text(messages)
    if any("toolResult" in b for b in last):
        results = [c["text"] for b in last if "toolResult" in b for c in b["toolResult"]["content"]]
        return Reply([{"text": "Tool said: " + " | ".join(results)}])
    if "tool" in choice:
        name = choice["tool"]["name"]
        return Reply(
            [{"toolUse": {"toolUseId": "tooluse_json1", "name": name, "input": {"answer": 42, "unit": "m"}}}],
            "tool_use",
        )
    if tools and "weather" in text:
        cities = ["Paris", "Tokyo"] if "parallel" in text else ["Paris"]
        uses = [
            {"toolUse": {"toolUseId": f"tooluse_{i}", "name": tools[0], "input": {"city": city}}}
            for i, city in enumerate(cities)
        ]
        return Reply([{"text": "Let me check."}, *uses], "tool_use")
    images = [b["image"] for b in last if "image" in b]
    if images:
        described = ", ".join(f"{i['format']} {len(base64.b64decode(i['source']['bytes']))} bytes" for i in images)
        return Reply([{"text": f"I see {len(images)} image(s): {described}"}])
    if "long" in text:
        return Reply([{"text": "cut here"}], "max_tokens")
    if "filter" in text:
        return Reply([{"text": "I cannot"}], "guardrail_intervened")
    system = " ".join(b["text"] for b in body.get("system", []))
    prefix = f"[{system}] " if system else ""
    return Reply([{"text": f"{prefix}You said: {text}"}])


def usage(reply: Reply) -> dict[str, int]:
    out = sum(len(str(b).split()) for b in reply.blocks)
    return {
        "inputTokens": reply.input_tokens,
        "outputTokens": out,
        "totalTokens": reply.input_tokens + out + 5,
        "cacheReadInputTokens": 3,
        "cacheWriteInputTokens": 2,
    }


def stream_frames(reply: Reply) -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"})]
    for index, block in enumerate(reply.blocks):
        if "text" in block:
            words = block["text"].split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                frames.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}))
        elif "reasoningContent" in block:
            thought = block["reasoningContent"]["reasoningText"]
            for i, word in enumerate(thought["text"].split(" ")):
                delta = {"reasoningContent": {"text": word if i == 0 else " " + word}}
                frames.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
            delta = {"reasoningContent": {"signature": thought["signature"]}}
            frames.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        else:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            frames.append(event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            raw = orjson.dumps(use["input"]).decode()
            for piece in (raw[:5], raw[5:]):
                delta = {"toolUse": {"input": piece}}
                frames.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        frames.append(event("contentBlockStop", {"contentBlockIndex": index}))
    frames.append(event("messageStop", {"stopReason": reply.stop}))
    frames.append(event("metadata", {"usage": usage(reply), "metrics": {"latencyMs": 12}}))
    return frames


async def send_frames(request: web.Request, frames: list[bytes]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
    await resp.prepare(request)
    # Cut the byte stream off the frame boundaries: a prelude split, frames glued together.
    data = b"".join(frames)
    cuts = [0, 5, 17, *range(40, len(data), 61), len(data)]
    for a, b in itertools.pairwise(cuts):
        if b > a:
            await resp.write(data[a:b])
    await resp.write_eof()
    return resp


TITAN_DIMENSIONS = (256, 512, 1024)
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
#: In flight now / at most, of the embeddings calls (``app[INFLIGHT]``): the provider's fan-out bound shows here.
INFLIGHT = web.AppKey("inflight", list)


def embedding_vector(text: str, salt: str, dimensions: int, normalize: bool = True) -> list[float]:
    """The fake's deterministic vector of one text."""
    import hashlib
    import math

    digest = hashlib.sha256(f"{salt}|{text}".encode()).digest()
    values = [(digest[i % 32] - 127.5) / 128 + i / (8 * dimensions) for i in range(dimensions)]
    if not normalize:
        return values
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def invoke_answer(model: str, body: dict[str, Any]) -> web.Response:
    """InvokeModel for Titan Text Embeddings and Cohere Embed, refusing what Bedrock refuses."""
    if "titan-embed-text" in model:
        if set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}:
            return aws_error(400, "ValidationException", f"extraneous key in {sorted(body)}")
        text = body.get("inputText")
        if not isinstance(text, str) or not text:
            return aws_error(400, "ValidationException", "inputText: expected a non-empty string")
        dims = body.get("dimensions", 1024)
        if dims not in TITAN_DIMENSIONS:
            return aws_error(400, "ValidationException", f"dimensions: {dims} is not one of 256, 512, 1024")
        if text == "refuse me":  # one refused call fails the whole request
            return aws_error(400, "ValidationException", "Malformed input request: refused by the fake.")
        normalize = body.get("normalize", True)
        vector = embedding_vector(text, "titan", dims, normalize)
        count = len(text.split())
        return web.json_response(
            {"embedding": vector, "inputTextTokenCount": count, "embeddingsByType": {"float": vector}},
            headers={"X-Amzn-Bedrock-Input-Token-Count": str(count)},
        )
    if model.startswith("cohere.embed-"):
        texts, input_type = body.get("texts"), body.get("input_type")
        if set(body) - {"texts", "input_type", "truncate", "embedding_types"}:
            return aws_error(400, "ValidationException", f"extraneous key in {sorted(body)}")
        if not isinstance(texts, list) or not 1 <= len(texts) <= 96:
            return aws_error(400, "ValidationException", "texts: between 1 and 96 strings")
        if input_type not in COHERE_INPUT_TYPES:
            return aws_error(400, "ValidationException", f"input_type: {input_type!r} is not valid")
        vectors = [embedding_vector(t, f"cohere|{input_type}", 1024) for t in texts]
        answer = {"id": "emb-1", "embeddings": vectors, "response_type": "embeddings_floats", "texts": texts}
        count = sum(len(t.split()) + 1 for t in texts)
        return web.json_response(answer, headers={"X-Amzn-Bedrock-Input-Token-Count": str(count)})
    return aws_error(400, "ValidationException", "The provided model doesn't support InvokeModel for embeddings.")


def make_app() -> web.Application:
    async def invoke(request: web.Request) -> web.Response:
        body = await request.read()
        denied = check_signature(request, body)
        if denied is not None:
            return denied
        if request.headers.get("Content-Type") != "application/json":
            return aws_error(415, "UnsupportedMediaTypeException", "Content-Type must be application/json")
        counts = request.app[INFLIGHT]
        counts[0] += 1
        counts[1] = max(counts[1], counts[0])
        try:
            await asyncio.sleep(0.02)  # calls of one request overlap when the provider fans them out
            return invoke_answer(request.match_info["model"], orjson.loads(body))
        finally:
            counts[0] -= 1

    async def converse(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        denied = check_signature(request, body)
        if denied is not None:
            return denied
        if request.headers.get("Content-Type") != "application/json":
            return aws_error(415, "UnsupportedMediaTypeException", "Content-Type must be application/json")
        model = request.match_info["model"]
        stream = request.match_info["action"] == "converse-stream"
        if model == "denied":
            return aws_error(
                403, "AccessDeniedException", "You don't have access to the model with the specified model ID."
            )
        if model == "invalid":
            return aws_error(400, "ValidationException", "The provided model identifier is invalid.")
        if model == "throttled":
            if stream:  # ConverseStream can also throttle in its first frame, after HTTP 200
                return await send_frames(request, [exception("throttlingException", "Too many requests, please wait.")])
            return aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
        request_body = orjson.loads(body)
        problem = thinking_problem(model, request_body)
        if problem is not None:
            return aws_error(400, "ValidationException", problem)
        reply = answer(request_body)
        if not stream:
            message = {"role": "assistant", "content": reply.blocks}
            return web.json_response(
                {
                    "output": {"message": message},
                    "stopReason": reply.stop,
                    "usage": usage(reply),
                    "metrics": {"latencyMs": 9},
                }
            )
        frames = stream_frames(reply)
        if model == "midstream-error":
            frames = [*frames[:3], exception("modelStreamErrorException", "The model stopped unexpectedly.")]
        elif model == "cut-short":
            frames = frames[:3]
        elif model == "bad-crc":
            broken = bytearray(frames[1])
            broken[-6] ^= 0xFF  # flip a payload byte: the message CRC no longer matches
            frames = [frames[0], bytes(broken), *frames[2:]]
        return await send_frames(request, frames)

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def root(request: web.Request) -> web.Response:
        return web.json_response({"message": "Not Found"}, status=404)

    app = web.Application(client_max_size=64 * 1024 * 1024)  # Converse takes images of several MB
    app[INFLIGHT] = [0, 0]
    app.router.add_post("/model/{model}/invoke", invoke)
    app.router.add_post(r"/model/{model}/{action:converse|converse-stream}", converse)
    app.router.add_get("/img/red.png", image)
    app.router.add_get("/", root)
    return app


fake_bedrock = upstream_fixture(make_app)


@pytest.fixture
def invoke_inflight(fake_bedrock: LoopbackServer) -> list[int]:
    """The fake's InvokeModel calls [in flight now, at most at once] (reset the second to measure)."""
    counts: list[int] = fake_bedrock.app[INFLIGHT]
    return counts


@pytest.fixture
def bedrock_wire() -> SimpleNamespace:
    """The frame builders and test credentials, for tests that need them directly."""
    return SimpleNamespace(
        frame=frame,
        event=event,
        exception=exception,
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        access_key_2=ACCESS_KEY_2,
        secret_key_2=SECRET_KEY_2,
        session_token_2=SESSION_TOKEN_2,
        api_key=API_KEY,
        png=PNG,
        Reply=Reply,
        stream_frames=stream_frames,
    )


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """The ``host`` fixture's server settings: image URLs on loopback (the fake's) may be fetched."""
    return {"url_fetch_allow": ["127.0.0.1"]}


def gateway_config(fake: LoopbackServer, **provider: Any) -> dict[str, Any]:
    table = {
        "type": "bedrock",
        "region": REGION,
        "endpoint_url": fake.url,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "max_retries": 0,
        **provider,
    }
    return {
        "server": {"url_fetch_allow": ["127.0.0.1"]},
        "providers": {"bedrock": table},
        "models": {
            "claude": {"provider": "bedrock", "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
            "nova": {"provider": "bedrock", "model": "amazon.nova-lite-v1:0"},
        },
    }


@pytest.fixture(scope="module")
def bedrock_gateway(fake_bedrock: LoopbackServer) -> Iterator[RunningGateway]:
    with run_gateway(gateway_config(fake_bedrock)) as gw:
        yield gw


@pytest.fixture
def bedrock_client(bedrock_gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=bedrock_gateway.url, api_key="unused", max_retries=0)


@pytest.fixture(scope="session")
def config_for_fake() -> Any:
    return gateway_config


@pytest.fixture
def start_fake_bedrock(serve_upstream: Callable[[web.Application], LoopbackServer]) -> Callable[[], LoopbackServer]:
    """``start_fake_bedrock()``: a fresh fake for one test; ``fake.stop()`` takes it down before the end."""
    return lambda: serve_upstream(make_app())
