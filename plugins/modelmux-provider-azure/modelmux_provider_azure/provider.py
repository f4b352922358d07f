"""The ``azure`` provider: Azure OpenAI, classic deployments or the v1 API, keys or Entra ID.

A passthrough like ``openai_compatible``: the body goes up with only ``model`` replaced
and the answer comes back as bytes. Azure-specific parts are small and kept here:
the URL scheme (api-version or /openai/v1), the ``api-key`` header or an Entra ID
token, content-filter errors made plain, and Azure's extra first stream event
(``prompt_filter_results`` with an empty id) dropped so strict clients see OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import orjson
from pydantic import Field, SecretStr, field_validator, model_validator

from modelmux.plugin import (
    Check,
    Completion,
    EventStream,
    Host,
    ModelMuxError,
    Provider,
    ProviderSettings,
    UpstreamRequest,
    UpstreamRequestError,
    error_from_status,
    get_json,
    open_upstream,
    probe_timeout,
    raw_stream,
    read_completion,
    request_body,
    timeout_for,
)
from modelmux_provider_azure.entra import EntraTokens

#: The first api-version that has the Responses API on the classic (api-version) path.
RESPONSES_MIN_API_VERSION = "2025-03-01-preview"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"


class AzureSettings(ProviderSettings):
    """Azure OpenAI; a model's upstream id is the deployment name (docs/providers/azure.md)."""

    type: str = "azure"
    endpoint: str = Field(description="https://RESOURCE.openai.azure.com")
    api_key: SecretStr = Field(SecretStr(""), description="the resource's key (auth = api_key)")
    api_version: str | None = Field(None, description="e.g. 2024-10-21; omit to use the v1 API at /openai/v1/")
    auth: Literal["api_key", "entra"] = Field("api_key", description="api_key, or entra (Microsoft Entra ID tokens)")
    entra_scope: str = Field(ENTRA_SCOPE, description="token scope requested with auth = entra")
    managed_identity_client_id: str | None = Field(
        None, description="client id of a user-assigned managed identity; unset: DefaultAzureCredential picks one"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="static headers added to every upstream call")
    native_responses: bool | None = Field(
        None,
        description="pass /v1/responses to Azure's Responses API; unset: when api_version has it (v1, or "
        "2025-03-01-preview and later), else translated to chat",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"must be a URL like https://myres.openai.azure.com (got {value!r})")
        # People paste the SDK's base URL; the provider adds /openai itself.
        for suffix in ("/openai/v1", "/openai"):
            if value.endswith(suffix):
                value = value[: -len(suffix)]
        return value

    @model_validator(mode="after")
    def _credentials(self) -> AzureSettings:
        if self.auth == "api_key" and not self.api_key.get_secret_value():
            raise ValueError(
                'api_key: missing. Set it (e.g. api_key = "${AZURE_OPENAI_API_KEY}"), or set auth = "entra" '
                "to use Microsoft Entra ID (pip install 'modelmux-provider-azure[entra]')"
            )
        return self


def responses_supported(api_version: str | None) -> bool:
    """The v1 API has /responses; the classic path has it from 2025-03-01-preview on."""
    return api_version is None or api_version[:10] >= RESPONSES_MIN_API_VERSION[:10]


def content_filter_error(provider: str, body: bytes) -> ModelMuxError | None:
    """A plain 400 for Azure's content-filter refusal (which categories tripped), or None."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return None
    inner: dict[str, Any] = err["innererror"] if isinstance(err.get("innererror"), dict) else {}
    if err.get("code") != "content_filter" and inner.get("code") != "ResponsibleAIPolicyViolation":
        return None
    results = inner.get("content_filter_result") or {}
    tripped = sorted(k for k, v in results.items() if isinstance(v, dict) and v.get("filtered"))
    which = f" ({', '.join(tripped)})" if tripped else ""
    return UpstreamRequestError(
        f"provider {provider}: the request was filtered by Azure OpenAI's content filter{which}: "
        f"{err.get('message') or 'content management policy'}",
        param=err.get("param") or "messages",
        code="content_filter",
        status_code=400,
    )


async def drop_prompt_filter_events(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Drop Azure's leading ``{"choices":[],"id":"",...,"prompt_filter_results":...}`` events.

    Only the start of the stream is looked at, until the first other event; from
    there on the bytes pass through untouched.
    """
    pending = b""
    async for chunk in source:
        pending += chunk
        while (cut := pending.find(b"\n\n")) >= 0 and _is_prompt_filter_event(pending[:cut]):
            pending = pending[cut + 2 :]
        if cut >= 0 or len(pending) > 1024 * 1024:  # a real first event (or not Azure's small one)
            break
    if pending:
        yield pending
    async for chunk in source:
        yield chunk


def _is_prompt_filter_event(event: bytes) -> bool:
    return b"prompt_filter_results" in event and (b'"id":""' in event or b'"id": ""' in event)


class AzureProvider(Provider):
    settings: AzureSettings
    #: The data plane lists base models; requests name deployments (doctor cannot check those).
    lists_model_ids = False

    def __init__(self, name: str, settings: AzureSettings, host: Host) -> None:
        super().__init__(name, settings, host)
        native = settings.native_responses
        self.native_responses = responses_supported(settings.api_version) if native is None else native
        self.v1 = settings.api_version is None
        self.root = settings.endpoint + ("/openai/v1" if self.v1 else "/openai")
        self._params: dict[str, str] = {} if self.v1 else {"api-version": str(settings.api_version)}
        headers: dict[str, str] = {"content-type": "application/json", "accept": "application/json"}
        headers.update(settings.headers)
        if settings.auth == "api_key":
            headers["api-key"] = settings.api_key.get_secret_value()
            self._tokens: EntraTokens | None = None
        else:
            self._tokens = EntraTokens(settings.entra_scope, settings.managed_identity_client_id)
        self._headers = headers
        self._timeout = timeout_for(settings)
        self._stream_timeout = timeout_for(settings, stream=True)

    @property
    def _auth_fix(self) -> str:
        if self._tokens is not None:
            return (
                "give the identity the 'Cognitive Services OpenAI User' role on the resource, and check "
                f"providers.{self.name}.endpoint"
            )
        return f"set providers.{self.name}.api_key to a key of this resource (Keys and Endpoint in the portal)"

    def _errors(self, status: int, body: bytes, headers: Mapping[str, str]) -> ModelMuxError:
        if status == 400:
            filtered = content_filter_error(self.name, body)
            if filtered is not None:
                return filtered
        if status == 404 and b"DeploymentNotFound" in body:
            return UpstreamRequestError(
                f"provider {self.name}: no deployment by that name on {self.settings.endpoint}. Fix: the model of "
                "a [models] entry is the Azure deployment name.",
                code="model_not_found",
                param="model",
                status_code=404,
            )
        return error_from_status(self.name, status, body, headers, auth_fix=self._auth_fix)

    async def _headers_for(self, stream: bool) -> dict[str, str]:
        headers = dict(self._headers)
        if stream:
            headers["accept"] = "text/event-stream"
        if self._tokens is not None:
            headers["authorization"] = f"Bearer {await self._tokens.token(self.name)}"
        return headers

    def chat_url(self, deployment: str) -> str:
        if self.v1:
            return f"{self.root}/chat/completions"
        return f"{self.root}/deployments/{quote(deployment, safe='')}/chat/completions"

    def embeddings_url(self, deployment: str) -> str:
        if self.v1:
            return f"{self.root}/embeddings"
        return f"{self.root}/deployments/{quote(deployment, safe='')}/embeddings"

    async def _post(self, url: str, request: UpstreamRequest, kind: Any) -> Completion | EventStream:
        resp = await open_upstream(
            self.host.http,
            url,
            provider=self.name,
            data=request_body(request),
            headers=await self._headers_for(request.stream),
            client_timeout=self._stream_timeout if request.stream else self._timeout,
            errors=self._errors,
            params=self._params,
        )
        if request.stream:
            transform = drop_prompt_filter_events if kind == "chat" else None
            return raw_stream(resp, provider=self.name, kind=kind, transform=transform)
        return await read_completion(resp, provider=self.name)

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        return await self._post(self.chat_url(request.model), request, "chat")

    async def embeddings(self, request: UpstreamRequest) -> Completion:
        """The deployment's ``/embeddings`` (v1: ``/openai/v1/embeddings``, the deployment as ``model``),
        passed through like chat."""
        resp = await open_upstream(
            self.host.http,
            self.embeddings_url(request.model),
            provider=self.name,
            data=request_body(request),
            headers=await self._headers_for(False),
            client_timeout=self._timeout,
            errors=self._errors,
            params=self._params,
        )
        return await read_completion(resp, provider=self.name)

    async def responses(self, request: UpstreamRequest) -> Completion | EventStream:
        if not self.native_responses:
            return await super().responses(request)
        return await self._post(f"{self.root}/responses", request, "responses")

    async def list_models(self) -> list[str]:
        """Models the resource offers (Azure lists models, not deployments, on the data plane)."""
        return await self._models(self._timeout)

    async def _models(self, client_timeout: aiohttp.ClientTimeout) -> list[str]:
        data = await get_json(
            self.host.http,
            f"{self.root}/models",
            provider=self.name,
            headers=await self._headers_for(False),
            client_timeout=client_timeout,
            params=self._params,
            errors=self._errors,
        )
        items = data.get("data") if isinstance(data, dict) else None
        return [str(m["id"]) for m in items or [] if isinstance(m, dict) and "id" in m]

    async def ready(self) -> bool:
        """``GET /openai[/v1]/models`` with a short timeout: the resource answers, accepts our key or
        Entra token (obtained here too), and the api-version is valid. No deployment is called."""
        await self._models(probe_timeout(self.settings))
        return True

    async def doctor(self) -> list[Check]:
        checks: list[Check] = []
        if not self.settings.endpoint.startswith("https://"):
            checks.append(
                Check(
                    "endpoint uses https",
                    False,
                    self.settings.endpoint,
                    f"set providers.{self.name}.endpoint to https://RESOURCE.openai.azure.com",
                    "config",
                )
            )
        api = "v1 API (/openai/v1)" if self.v1 else f"api-version {self.settings.api_version}"
        checks.append(Check("API path", True, api, topic="config"))
        try:
            models = await self.list_models()
        except ModelMuxError as exc:
            if exc.code == "upstream_auth_error":
                checks.append(Check("Azure accepts our credentials", False, exc.message, self._auth_fix, "auth"))
            else:
                checks.append(
                    Check(
                        "Azure endpoint reachable",
                        False,
                        exc.message,
                        f"check providers.{self.name}.endpoint and api_version, and the network to it",
                        "network",
                    )
                )
            return checks
        checks.append(Check("Azure endpoint reachable", True, f"{len(models)} model(s) offered", topic="network"))
        return checks

    async def aclose(self) -> None:
        if self._tokens is not None:
            await self._tokens.aclose()
