"""Hook implementations: the ``openai_compatible`` provider type (alias ``vllm``) and the ``vllm`` preset."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from modelmux.plugin import RegisterPreset, RegisterProvider, hookimpl
from modelmux_provider_vllm.provider import OpenAICompatibleProvider, OpenAICompatibleSettings

#: Where ``config init --preset vllm`` looks for a running vLLM (override with VLLM_BASE_URL).
DEFAULT_BASE_URL = "http://localhost:8000/v1"
DETECT_TIMEOUT_SECONDS = 0.5


def detect_models(base_url: str, timeout: float = DETECT_TIMEOUT_SECONDS) -> list[str] | None:
    """The model ids a server at ``base_url`` serves, or None when nothing answers there.

    Called from the CLI (no event loop), so a short blocking request is fine here.
    """
    req = urllib.request.Request(base_url.rstrip("/") + "/models", headers={"accept": "application/json"})
    key = os.environ.get("VLLM_API_KEY")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read(1024 * 1024))
    except (OSError, ValueError, urllib.error.URLError):
        return None
    items = data.get("data") if isinstance(data, dict) else None
    return [str(m["id"]) for m in items or [] if isinstance(m, dict) and "id" in m]


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def render_preset(detected: dict[str, Any]) -> str:
    base_url = str(detected.get("base_url") or os.environ.get("VLLM_BASE_URL") or DEFAULT_BASE_URL)
    models = detected["models"] if "models" in detected else detect_models(base_url)
    if models:
        found = f"# Found a server at {base_url} serving: {', '.join(models)}\n"
        model = models[0]
    else:
        found = f"# Nothing answered at {base_url}; start vLLM (see docs/providers/vllm.md) or fix base_url.\n"
        model = "meta-llama/Llama-3.1-8B-Instruct"
    public = model.rsplit("/", 1)[-1].lower()
    return f"""\
# ModelMux configuration: a vLLM (or any OpenAI-compatible) server.
{found}[server]
host = "127.0.0.1"
port = 3000

[state]
backend = "disk"

[providers.vllm]
type = "openai_compatible"
base_url = {_toml_str(base_url)}
api_key = "${{VLLM_API_KEY:-}}"   # empty: no auth header (vllm serve --api-key sets one)
timeout_seconds = 600
max_retries = 2
native_responses = true         # vLLM serves /v1/responses itself

[models.{_toml_str(public)}]
provider = "vllm"
model = {_toml_str(model)}
"""


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register("openai_compatible", OpenAICompatibleProvider, OpenAICompatibleSettings, aliases=("vllm",))


@hookimpl
def register_config_presets(register: RegisterPreset) -> None:
    register("vllm", "a vLLM or other OpenAI-compatible server (detects one on localhost:8000)", render_preset)
