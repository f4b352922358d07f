"""A fake Vertex AI on loopback, with a real OAuth token endpoint.

google-auth's service-account flow signs a JWT with the key generated here and
posts it to ``token_uri`` (this fake); the fake verifies the RS256 signature, the
issuer, audience, scope and expiry before it issues a token. ``:rawPredict`` and
``:streamRawPredict`` check the bearer token, the path and the body (Anthropic
Messages with ``anthropic_version`` and no ``model`` key) and answer from
``fixtures/``: the model id picks the fixture (``text@1`` -> ``text.json`` /
``text.sse``, ``error-429@1`` -> ``error_429.json`` with status 429).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from modelmux.testing import LoopbackServer, serve_aiohttp

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = "test-project"
REGION = "us-east5"
SA_EMAIL = "modelmux-test@test-project.iam.gserviceaccount.com"
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass
class FakeVertex:
    server: LoopbackServer
    public_key: rsa.RSAPublicKey
    key_file: Path = Path()
    project: str = PROJECT
    region: str = REGION
    #: Lifetime of issued tokens; below google-auth's refresh threshold (225 s) every use refreshes.
    expires_in: int = 3600
    issued: list[str] = field(default_factory=list)
    token_requests: int = 0
    #: Seconds the token endpoint waits before answering (to make concurrent refreshes overlap).
    token_delay: float = 0.0
    #: Answer every predict call with 401, as Vertex does for a revoked token.
    reject_tokens: bool = False
    #: Split stream bodies into writes of this many bytes (0: one write per event).
    stream_write_size: int = 0
    #: Bodies of the ``publishers/google`` ``:predict`` (embeddings) calls, in arrival order.
    embed_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def predict_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.server.requests if "Predict" in r["path"]]

    def last_body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.predict_requests()[-1]["body"])
        return body

    def provider_table(self, **over: Any) -> dict[str, Any]:
        table = {
            "type": "vertex",
            "project": self.project,
            "region": self.region,
            "credentials_file": str(self.key_file),
            "base_url": self.url,
            "max_retries": 0,
            "timeout_seconds": 20,
        }
        table.update(over)
        return table


#: The fake's Google embedding models: (instances per call, default dimensions).
EMBEDDING_MODELS = {
    "text-embedding-005": (250, 768),
    "text-multilingual-embedding-002": (250, 768),
    "gemini-embedding-001": (1, 3072),
}
TASK_TYPES = {"RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION", "CLUSTERING"}


def embedding_values_of(content: str, task: str | None, dimensions: int) -> list[float]:
    """The fake's deterministic vector of one instance (the task type changes it, as it does upstream)."""
    import hashlib

    digest = hashlib.sha256(f"{task}|{content}".encode()).digest()
    return [(digest[i % 32] - 127.5) / 128 for i in range(dimensions)]


def _google_error(status: int, message: str, code: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status)


def _anthropic_error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"type": "error", "error": {"type": "invalid_request_error", "message": message}}, status=status
    )


def build_app(fake_ref: list[FakeVertex]) -> web.Application:
    async def token(request: web.Request) -> web.Response:
        fake = fake_ref[0]
        fake.token_requests += 1
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            head, payload, sig = str(form["assertion"]).split(".")
            fake.public_key.verify(_b64url(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(_b64url(payload))
            assert json.loads(_b64url(head))["alg"] == "RS256"
        except Exception as exc:
            return web.json_response(
                {"error": "invalid_grant", "error_description": f"Invalid JWT Signature ({type(exc).__name__})"},
                status=400,
            )
        problems = []
        if claims.get("iss") != SA_EMAIL:
            problems.append(f"iss {claims.get('iss')}")
        # google-auth, like Google, always uses the public token endpoint as the audience.
        if claims.get("aud") != "https://oauth2.googleapis.com/token":
            problems.append(f"aud {claims.get('aud')}")
        if "https://www.googleapis.com/auth/cloud-platform" not in str(claims.get("scope")).split():
            problems.append(f"scope {claims.get('scope')}")
        if not claims.get("exp") or claims["exp"] < time.time():
            problems.append("expired assertion")
        if problems:
            return web.json_response({"error": "invalid_grant", "error_description": ", ".join(problems)}, status=400)
        if fake.token_delay:
            await asyncio.sleep(fake.token_delay)
        access = f"ya29.fake-{len(fake.issued) + 1}"
        fake.issued.append(access)
        return web.json_response({"access_token": access, "expires_in": fake.expires_in, "token_type": "Bearer"})

    def check_auth(request: web.Request) -> web.Response | None:
        fake = fake_ref[0]
        auth = request.headers.get("authorization", "")
        if fake.reject_tokens or not auth.startswith("Bearer ") or auth[7:] not in fake.issued:
            return web.json_response(json.loads((FIXTURES / "error_401.json").read_text()), status=401)
        return None

    async def location(request: web.Request) -> web.Response:
        fake = fake_ref[0]
        denied = check_auth(request)
        if denied is not None:
            return denied
        if request.match_info["project"] != fake.project or request.match_info["region"] != fake.region:
            return _google_error(404, "Location not found", "NOT_FOUND")
        p, r = fake.project, fake.region
        return web.json_response({"name": f"projects/{p}/locations/{r}", "locationId": r})

    async def predict(request: web.Request) -> web.StreamResponse:
        fake = fake_ref[0]
        denied = check_auth(request)
        if denied is not None:
            return denied
        project, region, tail = (request.match_info[k] for k in ("project", "region", "tail"))
        model, _, method = tail.partition(":")
        if method not in ("rawPredict", "streamRawPredict"):
            return _google_error(404, f"unknown method {method}", "NOT_FOUND")
        if project != fake.project or region != fake.region:
            return _google_error(404, f"project {project} / location {region} not found", "NOT_FOUND")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _anthropic_error(400, "fake vertex: body is not JSON")
        problems = []
        if body.get("anthropic_version") != "vertex-2023-10-16":
            problems.append(f"anthropic_version is {body.get('anthropic_version')!r}")
        if "model" in body:
            problems.append("body has a model key (Vertex takes the model from the URL)")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            problems.append("messages missing")
        if not isinstance(body.get("max_tokens"), int):
            problems.append("max_tokens missing")
        if bool(body.get("stream")) != (method == "streamRawPredict"):
            problems.append(f"stream={body.get('stream')} sent to :{method}")
        if problems:
            return _anthropic_error(400, "fake vertex: " + "; ".join(problems))
        name = model.split("@")[0]
        if name.startswith("error-"):
            status = int(name.split("-")[1])
            headers = {"retry-after": "7"} if status == 429 else {}
            return web.Response(
                body=(FIXTURES / f"error_{status}.json").read_bytes(),
                status=status,
                headers=headers,
                content_type="application/json",
            )
        if method == "rawPredict":
            path = FIXTURES / f"{name}.json"
            if not path.exists():
                return _google_error(404, f"Publisher Model `{model}` not found.", "NOT_FOUND")
            return web.Response(body=path.read_bytes(), content_type="application/json")
        path = FIXTURES / f"{name}.sse"
        if not path.exists():
            return _google_error(404, f"Publisher Model `{model}` not found.", "NOT_FOUND")
        data = path.read_bytes()
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        size = fake.stream_write_size
        pieces = [data[i : i + size] for i in range(0, len(data), size)] if size else data.split(b"\n\n")
        try:
            for piece in pieces:
                await resp.write(piece if size else piece + b"\n\n")
                await asyncio.sleep(0.001)
        except ConnectionResetError:
            return resp  # the gateway hung up after an error event, as it should: nothing to report
        if name == "cut":
            assert request.transport is not None
            request.transport.close()  # drop the connection mid-stream, as a crashed upstream would
            return resp
        await resp.write_eof()
        return resp

    async def google_predict(request: web.Request) -> web.Response:
        """``publishers/google/models/{model}:predict``: text embeddings, checked as Vertex checks them."""
        fake = fake_ref[0]
        denied = check_auth(request)
        if denied is not None:
            return denied
        project, region, tail = (request.match_info[k] for k in ("project", "region", "tail"))
        model, _, method = tail.partition(":")
        if method != "predict" or project != fake.project or region != fake.region:
            return _google_error(404, f"unknown {project}/{region}/{tail}", "NOT_FOUND")
        if model not in EMBEDDING_MODELS:
            return _google_error(404, f"Publisher Model `{model}` not found.", "NOT_FOUND")
        per_call, default_dims = EMBEDDING_MODELS[model]
        body = json.loads(await request.read())
        fake.embed_calls.append(body)
        instances = body.get("instances")
        if set(body) - {"instances", "parameters"} or not isinstance(instances, list) or not instances:
            return _google_error(400, f"fake vertex: bad body keys {sorted(body)}", "INVALID_ARGUMENT")
        if len(instances) > per_call:
            return _google_error(
                400, f"{model} takes at most {per_call} instances per request, got {len(instances)}", "INVALID_ARGUMENT"
            )
        parameters = body.get("parameters") or {}
        if set(parameters) - {"outputDimensionality", "autoTruncate"}:
            return _google_error(400, f"fake vertex: unknown parameters {sorted(parameters)}", "INVALID_ARGUMENT")
        dims = parameters.get("outputDimensionality", default_dims)
        predictions = []
        for instance in instances:
            content, task = instance.get("content"), instance.get("task_type")
            if set(instance) - {"content", "task_type"} or not isinstance(content, str) or not content:
                return _google_error(400, f"fake vertex: bad instance {instance}", "INVALID_ARGUMENT")
            if content == "refuse me":  # one refused call fails the whole request
                return _google_error(400, "The input was refused by the fake.", "INVALID_ARGUMENT")
            if task is not None and task not in TASK_TYPES:
                return _google_error(400, f"Unsupported task type: {task}", "INVALID_ARGUMENT")
            predictions.append(
                {
                    "embeddings": {
                        "statistics": {"truncated": False, "token_count": float(len(content.split()))},
                        "values": embedding_values_of(content, task, dims),
                    }
                }
            )
        await asyncio.sleep(0.01)  # calls of one request overlap when the provider fans them out
        return web.json_response({"predictions": predictions, "metadata": {"billableCharacterCount": 10}})

    app = web.Application(client_max_size=256 * 1024 * 1024)  # Vertex takes requests with large images
    app.router.add_post("/token", token)
    app.router.add_post("/v1/projects/{project}/locations/{region}/publishers/google/models/{tail}", google_predict)
    app.router.add_get("/v1/projects/{project}/locations/{region}", location)
    app.router.add_post("/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{tail}", predict)
    return app


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_key_file(path: Path, key: rsa.RSAPrivateKey, token_uri: str, project: str = PROJECT) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": project,
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": SA_EMAIL,
                "client_id": "1234567890",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri,
            }
        )
    )
    return path


@contextlib.contextmanager
def _fake(key: rsa.RSAPrivateKey, directory: Path) -> Iterator[FakeVertex]:
    ref: list[FakeVertex] = []
    with serve_aiohttp(build_app(ref)) as server:
        fake = FakeVertex(server, key.public_key())
        ref.append(fake)
        fake.key_file = write_key_file(directory / "sa.json", key, f"{server.url}/token")
        yield fake


@pytest.fixture
def fake_vertex(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> Iterator[FakeVertex]:
    with _fake(rsa_key, tmp_path) as fake:
        yield fake


@pytest.fixture(scope="module")
def shared_fake_vertex(rsa_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeVertex]:
    """One fake for a whole module (end-to-end tests share one gateway in front of it)."""
    with _fake(rsa_key, tmp_path_factory.mktemp("vertex")) as fake:
        yield fake


@pytest.fixture
def embedding_values() -> Any:
    """``embedding_values(content, task_type, dimensions)``: the vector the fake answers for one instance."""
    return embedding_values_of


@pytest.fixture(scope="module")
def image_server() -> Iterator[LoopbackServer]:
    async def png(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", png)
    with serve_aiohttp(app) as server:
        yield server


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """The ``host`` fixture's server settings: image URLs on loopback (``image_server``) may be fetched."""
    return {"url_fetch_allow": ["127.0.0.1"]}


@pytest.fixture
def png_bytes() -> bytes:
    return PNG


@pytest.fixture
def start_fake_vertex(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> Any:
    """``start_fake_vertex()`` -> a context manager yielding a fresh ``FakeVertex``; leaving it takes it down."""
    return lambda: _fake(rsa_key, tmp_path)
