"""What the benchmark sends, to whom: request bodies, the gateway's configuration, the targets.

Three scenarios, each measured on three systems:

* ``passthrough``: an OpenAI chat request. ``direct`` posts it to the fake upstream,
  ``bare`` to the bare forwarder (which posts it to the upstream), ``modelmux`` to the
  gateway, whose ``vllm`` (openai_compatible) provider forwards it.
* ``embeddings``: an OpenAI embeddings request (4 texts, ``encoding_format: base64`` as the
  official Python SDK sends it), non-stream only. ``direct`` posts it to the fake upstream's
  ``/v1/embeddings`` (4 vectors of 1,024 dimensions, base64), ``bare`` to the bare forwarder,
  ``modelmux`` to the gateway, whose ``vllm`` provider passes it through with ``model`` replaced.
* ``translation``: ``modelmux`` gets the same OpenAI chat request for a model on the
  ``vertex`` provider, which translates it to Anthropic Messages, gets a Google access token
  from the fake's OAuth endpoint (once; it is cached) and posts to ``:rawPredict`` /
  ``:streamRawPredict``, then translates the answer back. ``direct`` and ``bare`` post the
  Anthropic body the gateway would send straight to that Vertex path: the same cost-of-forwarding bar.

Imported by ``bench/run.py`` and by ``tests/e2e/test_bench_fakes.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIOS = ("passthrough", "embeddings", "translation")
MODES = ("nonstream", "stream")
#: Every (scenario, stream) pair measured: embeddings are never streamed.
KINDS = tuple((s, stream) for s in SCENARIOS for stream in (False, True) if not (s == "embeddings" and stream))


def modes(scenario: str) -> tuple[str, ...]:
    return ("nonstream",) if scenario == "embeddings" else MODES


SYSTEMS = ("direct", "bare", "modelmux")

API_KEY = "mm-bench-0123456789abcdef"  # the gateway's server.api_keys entry, sent by wrk
UPSTREAM_TOKEN = "ya29.bench-fixed-token"  # what the fake's /token issues (fake_upstream.TOKEN)
PROJECT, REGION = "bench-project", "us-east5"
SA_EMAIL = "modelmux-bench@bench-project.iam.gserviceaccount.com"
VLLM_MODEL = "bench-llama"  # gateway model names
CLAUDE_MODEL = "bench-claude"
UPSTREAM_MODEL = "fake-model-1"
CLAUDE_UPSTREAM_MODEL = "claude-sonnet-4-5@20250929"
SYSTEM_PROMPT = "You are a helpful assistant."
USER_PROMPT = "Say something short about benchmarks."
MAX_TOKENS = 256
CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
EMBED_MODEL = "bench-embed"  # gateway model name
EMBED_UPSTREAM_MODEL = "fake-embed-1"
EMBED_INPUTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Benchmarks measure what the gateway adds to a request.",
    "Embeddings turn text into vectors for retrieval.",
    "A short fourth sentence.",
]


def embeddings_body(model: str) -> dict[str, Any]:
    return {"model": model, "input": EMBED_INPUTS, "encoding_format": "base64"}


def chat_body(model: str, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_PROMPT}],
        "temperature": 0.2,
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    }


def anthropic_body(stream: bool) -> dict[str, Any]:
    """What the vertex provider posts for ``chat_body(CLAUDE_MODEL, stream)``."""
    return {
        "anthropic_version": "vertex-2023-10-16",
        "messages": [{"role": "user", "content": [{"type": "text", "text": USER_PROMPT}]}],
        "system": [{"type": "text", "text": SYSTEM_PROMPT}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0.2,
        "stream": stream,
    }


def vertex_path(stream: bool) -> str:
    method = "streamRawPredict" if stream else "rawPredict"
    return f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{CLAUDE_UPSTREAM_MODEL}:{method}"


@dataclass(frozen=True)
class Target:
    """One thing wrk hits: URL path, body and Authorization header for a system in a cell."""

    path: str
    body: dict[str, Any]
    auth: str

    @property
    def body_bytes(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


def target(system: str, scenario: str, stream: bool) -> Target:
    if scenario == "embeddings":
        model = EMBED_MODEL if system == "modelmux" else EMBED_UPSTREAM_MODEL
        return Target(EMBEDDINGS_PATH, embeddings_body(model), f"Bearer {API_KEY}")
    if system == "modelmux":
        model = VLLM_MODEL if scenario == "passthrough" else CLAUDE_MODEL
        return Target(CHAT_PATH, chat_body(model, stream), f"Bearer {API_KEY}")
    if scenario == "passthrough":
        return Target(CHAT_PATH, chat_body(UPSTREAM_MODEL, stream), f"Bearer {API_KEY}")
    return Target(vertex_path(stream), anthropic_body(stream), f"Bearer {UPSTREAM_TOKEN}")


def write_service_account(path: Path, token_uri: str) -> Path:
    """A throwaway service-account key file whose ``token_uri`` is the fake's OAuth endpoint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "bench0000000000",
        "private_key": pem,
        "client_email": SA_EMAIL,
        "client_id": "1000000000000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return path


def gateway_config(upstream: str, key_file: Path, state_dir: Path, port: int = 0, workers: int = 1) -> dict[str, Any]:
    """The gateway's configuration: both providers, an API key, default logging and metrics."""
    return {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "workers": workers,
            "api_keys": [API_KEY],
            "log_level": "info",  # the default: one access line per request
            "log_format": "pretty",  # the default
        },
        "state": {"backend": "disk", "path": str(state_dir / "state")},
        "cache": {"enabled": False, "backend": "disk", "path": str(state_dir / "cache")},
        "providers": {
            "vllm": {"type": "vllm", "base_url": f"{upstream}/v1"},
            "claude": {
                "type": "vertex",
                "project": PROJECT,
                "region": REGION,
                "credentials_file": str(key_file),
                "base_url": upstream,
            },
        },
        "models": {
            VLLM_MODEL: {"provider": "vllm", "model": UPSTREAM_MODEL},
            CLAUDE_MODEL: {"provider": "claude", "model": CLAUDE_UPSTREAM_MODEL},
            EMBED_MODEL: {"provider": "vllm", "model": EMBED_UPSTREAM_MODEL},
        },
    }


def check_embeddings(raw: bytes, count: int = len(EMBED_INPUTS)) -> str | None:
    """What is wrong with an embeddings answer (None: ``count`` base64 vectors of 1,024 float32 in order)."""
    import base64

    try:
        data = json.loads(raw)
        items = data["data"]
        sizes = [len(base64.b64decode(item["embedding"])) for item in items]
        indexes = [item["index"] for item in items]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"not an embeddings list ({exc!r}): {raw[:200]!r}"
    if indexes != list(range(count)) or sizes != [4096] * count:
        return f"unexpected embeddings: indexes {indexes}, byte sizes {sizes}"
    return None


def check(scenario: str, raw: bytes, *, stream: bool, anthropic: bool, text: str) -> str | None:
    """What is wrong with an answer of ``scenario`` (None: it is the fixed answer, whole)."""
    if scenario == "embeddings":
        return check_embeddings(raw)
    return check_answer(raw, stream=stream, anthropic=anthropic, text=text)


def check_answer(raw: bytes, *, stream: bool, anthropic: bool, text: str) -> str | None:
    """What is wrong with an answer (None: it is the fixed answer, whole)."""
    if not stream:
        try:
            data = json.loads(raw)
            got = data["content"][0]["text"] if anthropic else data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return f"not the expected JSON ({exc!r}): {raw[:200]!r}"
        return None if got == text else f"unexpected text {got!r}"
    pieces = []
    for line in raw.split(b"\n"):
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        event = json.loads(line[6:])
        if anthropic:
            if event.get("type") == "content_block_delta":
                pieces.append(event["delta"]["text"])
        else:
            for choice in event.get("choices") or []:
                pieces.append(choice.get("delta", {}).get("content") or "")
    end = b"event: message_stop" if anthropic else b"data: [DONE]"
    if end not in raw:
        return f"the stream does not end with {end.decode()}"
    got = "".join(pieces)
    return None if got == text else f"unexpected streamed text {got!r}"
