"""The Bedrock provider: Converse for non-streaming requests, ConverseStream for streaming ones.

Requests are signed by botocore (``auth.Signer``) and sent through the host's pooled
aiohttp client, not botocore's HTTP stack, so Bedrock shares the gateway's
connection pool, timeouts and cancellation. The host retries; this never does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from modelmux.plugin import (
    Check,
    Completion,
    DictEventStream,
    EventStream,
    Host,
    ModelMuxError,
    Provider,
    UpstreamError,
    UpstreamRequest,
    open_upstream,
    probe_timeout,
    read_body,
    request_data,
    timeout_for,
    upstream_errors,
)
from modelmux_provider_bedrock.auth import API_KEY_ENV, Signer, default_endpoint
from modelmux_provider_bedrock.aws_errors import http_error
from modelmux_provider_bedrock.converse import ConverseCall, to_completion, to_converse
from modelmux_provider_bedrock.embeddings import embed, embedding_family
from modelmux_provider_bedrock.settings import BedrockSettings
from modelmux_provider_bedrock.stream import ChunkBuilder, Event, events

EVENTSTREAM = "application/vnd.amazon.eventstream"


class BedrockProvider(Provider):
    settings: BedrockSettings

    def __init__(self, name: str, settings: BedrockSettings, host: Host) -> None:
        super().__init__(name, settings, host)
        self.signer = Signer(settings, name)
        self.region = self.signer.region
        self.endpoint = settings.endpoint_url or default_endpoint(self.region)

    def url(self, model: str, action: str) -> str:
        # Model ids, inference profile ids and ARNs contain ':' and '/': quote all of it. The URL
        # is sent as is (yarl would otherwise unquote ':') and botocore signs that same path.
        return f"{self.endpoint}/model/{quote(model, safe='')}/{action}"

    async def _post(self, url: str, body: bytes, *, stream: bool) -> aiohttp.ClientResponse:
        """The upstream's answer once its status is 200; any other status is raised as an error."""
        accept = EVENTSTREAM if stream else "application/json"
        headers = await self.signer.headers(url, body, {"Content-Type": "application/json", "Accept": accept})
        return await open_upstream(
            self.host.http,
            URL(url, encoded=True),
            provider=self.name,
            data=request_data(body),
            headers=headers,
            client_timeout=timeout_for(self.settings, stream=stream),
            errors=lambda status, raw, headers: http_error(
                self.name, status, raw, headers, auth_fix=self.signer.auth_fix()
            ),
        )

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        call = await to_converse(request.body, request.images or self.host.images, request.model)
        body = orjson.dumps(call.payload)
        call.payload = {}  # the answer's translation keeps the call: not the request's images
        if not request.stream:
            resp = await self._post(self.url(request.model, "converse"), body, stream=False)
            raw = await read_body(resp, provider=self.name)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise UpstreamError(f"provider {self.name}: Bedrock answered invalid JSON: {exc}") from exc
            return Completion(data=to_completion(data, call, request.public_model))
        return await self._open_stream(request, call, body)

    async def embeddings(self, request: UpstreamRequest) -> Completion:
        """Titan Text and Cohere Embed through InvokeModel (``embeddings.py``); other models serve none."""
        family = embedding_family(request.model)
        if family is None:
            return await super().embeddings(request)
        return await embed(self, request, family)

    async def _open_stream(self, request: UpstreamRequest, call: ConverseCall, body: bytes) -> EventStream:
        resp = await self._post(self.url(request.model, "converse-stream"), body, stream=True)
        source = events(resp.content, self.name, auth_fix=self.signer.auth_fix())

        async def close() -> None:
            await source.aclose()
            resp.close()  # a no-op for a fully read body; drops the connection of an abandoned one

        try:
            # The first frame decides: a throttling or validation exception here is still a status
            # error the router can retry or fall back on, not an in-stream error.
            first = await anext(source)
        except StopAsyncIteration:
            await close()
            raise UpstreamError(
                f"provider {self.name}: Bedrock ended the stream before any event", code="upstream_stream_truncated"
            ) from None
        except BaseException:
            await close()
            raise

        # The stream's usage is known at the metadata event, also when the client did not ask for it.
        builder = ChunkBuilder(call, request.public_model, lambda counted: setattr(stream, "usage", counted))
        stream = DictEventStream(self._chunks(builder, first, source), on_close=close)
        return stream

    async def _chunks(
        self, builder: ChunkBuilder, first: Event, source: AsyncIterator[Event]
    ) -> AsyncIterator[dict[str, Any]]:
        for chunk in builder.feed(*first):
            yield chunk
        async for kind, data in source:
            for chunk in builder.feed(kind, data):
                yield chunk
        if not builder.finished:
            raise UpstreamError(
                f"provider {self.name}: the Bedrock stream ended before messageStop", code="upstream_stream_truncated"
            )

    async def _ping(self, client_timeout: aiohttp.ClientTimeout) -> int:
        """The HTTP status of an unsigned ``GET {endpoint}/``: any answer means the endpoint is there."""
        async with upstream_errors(self.name):
            async with self.host.http.get(f"{self.endpoint}/", timeout=client_timeout) as resp:
                return resp.status

    async def ready(self) -> bool:
        """Credentials resolve (API key, configured keys, or the AWS chain, refreshed if due) and the
        runtime endpoint answers HTTP within a short timeout. Bedrock's runtime has no free signed
        call (model lists are on the control plane), so a rejected key shows on the first request."""
        if not self.signer.api_key:
            await self.signer.frozen()
        await self._ping(probe_timeout(self.settings))
        return True

    async def doctor(self) -> list[Check]:
        checks = [Check("region set", True, f"{self.region} ({self.endpoint})", topic="config")]
        checks.append(await self._credentials_check())
        checks.append(await self._reachability_check())
        return checks

    async def _credentials_check(self) -> Check:
        name = "credentials found"
        if self.signer.api_key:
            return Check(name, True, self.signer.method, topic="auth")
        try:
            creds = await self.signer.credentials()
            await self.signer.frozen()
        except ModelMuxError as exc:
            return Check(
                name,
                False,
                exc.message,
                "set AWS_PROFILE (run `aws sso login` for SSO profiles), or AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or put aws_access_key_id/aws_secret_access_key or api_key (or {API_KEY_ENV}) "
                f"under [providers.{self.name}]",
                topic="auth",
            )
        return Check(name, True, f"SigV4, credentials from {creds.method}", topic="auth")

    async def _reachability_check(self) -> Check:
        name = "endpoint reachable"
        started = time.perf_counter()
        try:
            timeout = aiohttp.ClientTimeout(total=min(self.settings.connect_timeout_seconds, 10.0))
            status = await self._ping(timeout)
        except ModelMuxError as exc:
            return Check(
                name,
                False,
                exc.message,
                f"check network access to {self.endpoint} (proxy, VPC endpoint, firewall), the region, "
                f"or endpoint_url of [providers.{self.name}]",
                topic="network",
            )
        ms = (time.perf_counter() - started) * 1000
        return Check(name, True, f"{self.endpoint} answered HTTP {status} in {ms:.0f} ms", topic="network")
