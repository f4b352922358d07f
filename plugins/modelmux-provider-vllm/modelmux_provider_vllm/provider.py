"""The ``openai_compatible`` provider (alias ``vllm``): vLLM, llama.cpp's server, OpenAI itself.

A passthrough (chat, Responses and embeddings): the client's body goes upstream with only ``model`` replaced, and the
upstream's bytes come back untouched (see ``modelmux.passthrough``). Nothing is parsed
on the hot path except the status line and, cheaply, the usage of a stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from pydantic import Field, SecretStr, field_validator

from modelmux.plugin import (
    Check,
    Completion,
    EventStream,
    Host,
    ModelMuxError,
    Provider,
    ProviderSettings,
    UpstreamRequest,
    error_from_status,
    get_json,
    open_upstream,
    probe_timeout,
    raw_stream,
    read_completion,
    request_body,
    timeout_for,
)


class OpenAICompatibleSettings(ProviderSettings):
    """Any OpenAI-compatible server: vLLM, llama.cpp, SGLang, OpenAI, ... (docs/providers/vllm.md)."""

    type: str = "openai_compatible"
    base_url: str = Field(
        "http://localhost:8000/v1",
        description="the upstream's OpenAI API root, usually ending in /v1",
    )
    api_key: SecretStr = Field(SecretStr(""), description="empty: no auth header")
    api_key_header: str | None = Field(
        None,
        description='send the key raw in this header instead of "Authorization: Bearer KEY"',
    )
    headers: dict[str, str] = Field(default_factory=dict, description="static headers added to every upstream call")
    native_responses: bool = Field(True, description="the upstream serves /v1/responses itself (vLLM does)")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {value!r}), e.g. http://localhost:8000/v1")
        return value.rstrip("/")


class OpenAICompatibleProvider(Provider):
    settings: OpenAICompatibleSettings

    def __init__(self, name: str, settings: OpenAICompatibleSettings, host: Host) -> None:
        super().__init__(name, settings, host)
        self.native_responses = settings.native_responses
        self.base_url = settings.base_url
        headers: dict[str, str] = {"content-type": "application/json", "accept": "application/json"}
        headers.update(settings.headers)
        key = settings.api_key.get_secret_value()
        if key:
            if settings.api_key_header:
                headers[settings.api_key_header] = key
            else:
                headers["authorization"] = f"Bearer {key}"
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._timeout = timeout_for(settings)
        self._stream_timeout = timeout_for(settings, stream=True)

    @property
    def _auth_fix(self) -> str:
        return f"set providers.{self.name}.api_key (and api_key_header if the server wants another header)"

    def _errors(self, status: int, body: bytes, headers: Mapping[str, str]) -> ModelMuxError:
        return error_from_status(self.name, status, body, headers, auth_fix=self._auth_fix)

    async def _post(self, path: str, request: UpstreamRequest, kind: Any) -> Completion | EventStream:
        resp = await open_upstream(
            self.host.http,
            self.base_url + path,
            provider=self.name,
            data=request_body(request),
            headers=self._stream_headers if request.stream else self._headers,
            client_timeout=self._stream_timeout if request.stream else self._timeout,
            errors=self._errors,
        )
        if request.stream:
            return raw_stream(resp, provider=self.name, kind=kind)
        return await read_completion(resp, provider=self.name)

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        return await self._post("/chat/completions", request, "chat")

    async def responses(self, request: UpstreamRequest) -> Completion | EventStream:
        if not self.native_responses:
            return await super().responses(request)
        return await self._post("/responses", request, "responses")

    async def embeddings(self, request: UpstreamRequest) -> Completion:
        """``{base_url}/embeddings``: the client's body with only ``model`` replaced, the answer's bytes back
        (``encoding_format``, ``dimensions`` and token arrays are the upstream's to honour)."""
        resp = await open_upstream(
            self.host.http,
            self.base_url + "/embeddings",
            provider=self.name,
            data=request_body(request),
            headers=self._headers,
            client_timeout=self._timeout,
            errors=self._errors,
        )
        return await read_completion(resp, provider=self.name)

    async def list_models(self) -> list[str]:
        return await self._models(self._timeout)

    async def _models(self, client_timeout: aiohttp.ClientTimeout) -> list[str]:
        data = await get_json(
            self.host.http,
            self.base_url + "/models",
            provider=self.name,
            headers=self._headers,
            client_timeout=client_timeout,
            errors=self._errors,
        )
        items = data.get("data") if isinstance(data, dict) else None
        return [str(m["id"]) for m in items or [] if isinstance(m, dict) and "id" in m]

    async def ready(self) -> bool:
        """``GET {base_url}/models`` with a short timeout: reachable, our key accepted, no tokens spent.

        Any failure raises the mapped error (unreachable, 401 with the fix, 5xx), which
        ``/health/ready`` shows under this provider's name.
        """
        await self._models(probe_timeout(self.settings))
        return True

    async def doctor(self) -> list[Check]:
        checks: list[Check] = []
        try:
            models = await self.list_models()
        except ModelMuxError as exc:
            if exc.code == "upstream_auth_error":
                checks.append(Check("upstream accepts our key", False, exc.message, self._auth_fix, "auth"))
            elif exc.status_code == 404:
                checks.append(
                    Check(
                        "upstream serves /models",
                        False,
                        f"{self.base_url}/models: {exc.message}",
                        f"base_url usually ends in /v1; try {self.base_url}/v1",
                        "config",
                    )
                )
            else:
                checks.append(
                    Check(
                        "upstream reachable",
                        False,
                        exc.message,
                        f"start the server at {self.base_url}, or fix providers.{self.name}.base_url",
                        "network",
                    )
                )
            return checks
        checks.append(Check("upstream reachable", True, f"{self.base_url}: {len(models)} model(s)", topic="network"))
        return checks
