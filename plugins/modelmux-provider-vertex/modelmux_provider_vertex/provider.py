"""The ``vertex`` provider: Claude (Anthropic publisher models) on Vertex AI.

Requests are translated by the host's Anthropic translator
(``modelmux.translate.anthropic``); this module adds what is Vertex's own: the
``anthropic_version`` marker instead of a ``model`` key, the
``:rawPredict`` / ``:streamRawPredict`` URLs, Google auth and Vertex's errors.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from modelmux.plugin import (
    AnthropicPlan,
    AnthropicStream,
    Check,
    Completion,
    DictEventStream,
    EventStream,
    Host,
    ModelMuxError,
    Provider,
    SSEParser,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRequest,
    UpstreamRequestError,
    from_anthropic,
    open_upstream,
    probe_timeout,
    read_body,
    request_data,
    timeout_for,
    to_anthropic,
    upstream_errors,
    usage_from_anthropic,
)
from modelmux_provider_vertex.auth import ADC_FIX, GoogleAuth
from modelmux_provider_vertex.embeddings import embed, is_embedding_model
from modelmux_provider_vertex.errors import vertex_error
from modelmux_provider_vertex.settings import VertexSettings

ANTHROPIC_VERSION = "vertex-2023-10-16"
URL_CACHE_SIZE = 1024


def vertex_base_url(region: str) -> str:
    if region == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{region}-aiplatform.googleapis.com"


class VertexProvider(Provider):
    settings: VertexSettings

    def __init__(self, name: str, settings: VertexSettings, host: Host) -> None:
        super().__init__(name, settings, host)
        self.auth = GoogleAuth(name, settings.credentials_file, settings.timeout_seconds)
        self.base_url = (settings.base_url or vertex_base_url(settings.region)).rstrip("/")
        self._timeouts = {stream: timeout_for(settings, stream=stream) for stream in (False, True)}
        #: (model, stream) -> URL; bounded, as clients may name any PROVIDER/MODEL.
        self._urls: dict[tuple[str, bool], str] = {}

    @property
    def project(self) -> str | None:
        return self.settings.project or self.auth.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None

    def _project(self) -> str:
        project = self.project
        if not project:
            raise UpstreamAuthError(
                f"providers.{self.name}.project: missing. Set it, set GOOGLE_CLOUD_PROJECT, "
                "or run: modelmux config init --preset vertex",
                code="upstream_config_error",
            )
        return project

    def url(self, model: str, *, stream: bool) -> str:
        url = self._urls.get((model, stream))
        if url is None:
            url = self._url(model, stream)
            if len(self._urls) < URL_CACHE_SIZE and self.auth.credentials is not None:  # project is final
                self._urls[model, stream] = url
        return url

    def _url(self, model: str, stream: bool) -> str:
        method = "streamRawPredict" if stream else "rawPredict"
        region = self.settings.region
        return (
            f"{self.base_url}/v1/projects/{quote(self._project(), safe='')}/locations/{quote(region, safe='')}"
            f"/publishers/anthropic/models/{quote(model, safe='@')}:{method}"
        )

    def location_url(self) -> str:
        """The region's location resource: a free GET that answers "reachable" and "allowed"."""
        return (
            f"{self.base_url}/v1/projects/{quote(self._project(), safe='')}"
            f"/locations/{quote(self.settings.region, safe='')}"
        )

    async def ready(self) -> bool:
        """An access token is obtainable (cached by google-auth, so usually no call) and Vertex AI
        answers a GET of the region's location with it, within a short timeout. No model is called."""
        headers = await self.auth.headers()
        url = self.location_url()
        async with upstream_errors(self.name):
            async with self.host.http.get(url, headers=headers, timeout=probe_timeout(self.settings)) as resp:
                if resp.status == 200:
                    return True
                body = await resp.content.read(64 * 1024)
        if resp.status == 404:
            raise UpstreamRequestError(
                f"provider {self.name}: Vertex AI has no location {self.settings.region!r} in project "
                f"{self.project} (404). Fix: check project and region (e.g. us-east5, europe-west1 or global)",
                status_code=404,
                code="upstream_config_error",
            )
        raise self._error(resp.status, body, resp.headers, "(readiness check)")

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        plan = await to_anthropic(
            request.body,
            images=request.images or self.host.images,
            default_max_tokens=self.settings.default_max_tokens,
        )
        data = orjson.dumps({"anthropic_version": ANTHROPIC_VERSION, **plan.body})
        plan.body.clear()  # the answer's translation keeps the plan: not the request's images
        await self.auth.ensure_loaded()
        url = self.url(request.model, stream=request.stream)
        headers = await self.auth.headers()
        headers["content-type"] = "application/json"
        if request.stream:
            headers["accept"] = "text/event-stream"
        resp = await open_upstream(
            self.host.http,
            url,
            provider=self.name,
            data=request_data(data),
            headers=headers,
            client_timeout=self._timeouts[request.stream],
            errors=lambda status, body, headers: self._error(status, body, headers, request.model),
        )
        if not request.stream:
            return self._completion(await read_body(resp, provider=self.name), plan, request.public_model)
        translation = AnthropicStream(plan, model=request.public_model, provider=self.name)

        async def close() -> None:
            resp.close()  # a stream ended early must not return a half-read connection to the pool

        stream = DictEventStream(
            self._chunks(resp, translation, lambda usage: setattr(stream, "usage", usage)),
            on_close=close,
            batched=True,
            complete=lambda: translation.done,  # [DONE] goes out in the same write as the finish chunk
        )
        return stream

    async def embeddings(self, request: UpstreamRequest) -> Completion:
        """Google's text embedding models (``publishers/google/models/{model}:predict``, see
        ``embeddings.py``); any other model (Claude) does not serve embeddings."""
        if not is_embedding_model(request.model):
            return await super().embeddings(request)
        return await embed(self, request)

    def _completion(self, raw: bytes, plan: AnthropicPlan, model: str) -> Completion:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"provider {self.name}: Vertex AI answered invalid JSON: {exc}") from exc
        return Completion(data=from_anthropic(message, plan, model=model, provider=self.name))

    async def _chunks(
        self,
        resp: aiohttp.ClientResponse,
        translation: AnthropicStream,
        on_usage: Callable[[dict[str, Any]], None],
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The chat chunks of each network read, translated as the events arrive.

        Bytes are split into events before decoding (a character cut across reads
        stays intact). Everything one read held goes out as one batch, so a burst of
        small events costs one trip through the host's stream layers, not one each.
        At the end, ``on_usage`` gets the counts, also when the client asked for no usage
        chunk: the host counts the stream's tokens from them (docs/plugins.md).
        """
        parser = SSEParser()
        feed, decode = translation.feed, self._decode
        async with upstream_errors(self.name):
            async for data in resp.content.iter_any():
                out: list[dict[str, Any]] = []
                try:
                    for payload in parser.feed_data(data):
                        if feed(decode(payload), out):
                            break
                except ModelMuxError:
                    if out:  # what came before the upstream's error still reaches the client
                        yield out
                    raise
                if out:
                    yield out
                if translation.done:
                    break
            else:
                out = []
                for ev in parser.flush():
                    if feed(decode(ev.data), out):
                        break
                if out:
                    yield out
        translation.finish()
        on_usage(usage_from_anthropic(translation.usage))

    def _decode(self, data: bytes) -> dict[str, Any]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"provider {self.name}: invalid JSON in the Vertex AI stream: {exc}") from exc
        if not isinstance(event, dict):
            raise UpstreamError(f"provider {self.name}: unexpected event in the Vertex AI stream: {data[:200]!r}")
        return event

    def _error(self, status: int, body: bytes, headers: Any, model: str) -> ModelMuxError:
        return vertex_error(
            self.name,
            status,
            body,
            headers,
            model=model,
            project=self.project or "(unset)",
            region=self.settings.region,
            principal=self.auth.principal,
        )

    async def doctor(self) -> list[Check]:
        from modelmux_provider_vertex.doctor import run_checks

        return await run_checks(self)


def factory(name: str, settings: VertexSettings, host: Host) -> VertexProvider:
    """The provider, with a key-file problem named by its setting (``providers.NAME.credentials_file: ...``)."""
    try:
        return VertexProvider(name, settings, host)
    except ValueError as exc:
        raise ValueError(f"providers.{name}.{exc}") from exc


__all__ = ["ADC_FIX", "ANTHROPIC_VERSION", "VertexProvider", "factory", "vertex_base_url"]
