"""The provider interface: what a provider plugin implements and what the host gives it.

A request goes in as an ``UpstreamRequest`` (the client's JSON, already validated,
plus the upstream model id of the chosen deployment). A provider answers with a
``Completion`` (non-streaming) or an opened ``EventStream``; any failure is a
``modelmux.errors.ModelMuxError``.

Two kinds of provider fit the same interface without copies:

* translating providers (Vertex, Bedrock, echo) build OpenAI dicts and wrap them in
  ``Completion(data=...)`` / ``DictEventStream``;
* passthrough providers (vLLM, Azure) hand over the upstream's bytes in
  ``Completion(raw=...)`` / ``RawEventStream``: the host forwards them untouched and
  decodes JSON only when a consumer (the Responses translator, the cache) asks for it.

``chat()`` must return only once the upstream accepted the request (status known),
so that the router can still retry or fall back; errors after that point surface
while iterating the stream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from modelmux.errors import InvalidRequestError, ModelMuxError, UpstreamError
from modelmux.sse import DONE_FRAME, SSEParser, encode

if TYPE_CHECKING:
    import aiohttp

    from modelmux.config import ServerSettings
    from modelmux.images import ImageFetcher, RequestImages


class ProviderSettings(BaseModel):
    """Settings every ``[providers.NAME]`` table accepts. Plugins subclass this."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="the provider type: which plugin serves this table (modelmux plugins lists them)")
    timeout_seconds: float = Field(120.0, gt=0, description="total time for one upstream call, stream included")
    connect_timeout_seconds: float = Field(10.0, gt=0, description="time to open the connection")
    first_byte_timeout_seconds: float | None = Field(
        None, gt=0, description="time from sending the request to the first byte of the answer (unset: the total)"
    )
    idle_timeout_seconds: float | None = Field(
        None, gt=0, description="longest gap between two stream chunks (unset: the total)"
    )
    max_retries: int = Field(
        2, ge=0, le=10, description="retries of retryable failures (connection, timeout, 429, 5xx), with backoff"
    )


@dataclass
class Host:
    """What the host gives every provider: the one pooled upstream HTTP client and settings."""

    http: aiohttp.ClientSession
    server: ServerSettings
    #: Safe fetching of image URLs for providers that need image bytes (per request: ``UpstreamRequest.images``).
    images: ImageFetcher


#: The options of a model without ``options`` (shared, read-only).
NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


@dataclass(slots=True)
class UpstreamRequest:
    """One attempt of a client request against one deployment."""

    #: The client's JSON body (validated). Read it; copy before changing it.
    body: dict[str, Any]
    #: The upstream model id of this deployment (what to send upstream).
    model: str
    #: The model name the client asked for (what to answer with).
    public_model: str
    stream: bool
    request_id: str = ""
    #: The client request's images: fetched once for all its attempts, within its limits. Set by
    #: the router; ``None`` (a provider called directly): use ``host.images.for_request()``.
    images: RequestImages | None = None
    #: The ``options`` table of the ``[models.NAME]`` this deployment belongs to (the client's
    #: model, or the fallback being tried; empty for ``PROVIDER/MODEL`` names): provider-specific
    #: settings per model, e.g. ``input_type`` of Cohere Embed on Bedrock.
    options: Mapping[str, Any] = field(default_factory=lambda: NO_OPTIONS)


@dataclass
class Check:
    """One line of ``modelmux doctor``."""

    name: str
    ok: bool
    detail: str = ""
    fix: str = ""
    #: Which ``modelmux troubleshoot`` topic it belongs to: config, auth or network.
    topic: Literal["config", "auth", "network"] = "network"


class Completion:
    """A non-streaming answer: either decoded ``data`` or the upstream's ``raw`` JSON bytes."""

    __slots__ = ("_data", "_raw", "headers")

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if data is None and raw is None:
            raise ValueError("Completion needs data or raw")
        self._data = data
        self._raw = raw
        self.headers = headers or {}

    def json(self) -> dict[str, Any]:
        if self._data is None:
            assert self._raw is not None
            try:
                self._data = orjson.loads(self._raw)
            except orjson.JSONDecodeError as exc:
                raise UpstreamError(f"the upstream answered invalid JSON: {exc}") from exc
        return self._data

    def body(self) -> bytes:
        if self._raw is None:
            self._raw = orjson.dumps(self._data)
        return self._raw

    @property
    def usage(self) -> dict[str, Any] | None:
        usage = self.json().get("usage")
        return usage if isinstance(usage, dict) else None


CloseFn = Callable[[], Awaitable[None]]


class EventStream(ABC):
    """An opened upstream stream. Iterate ``sse()`` (bytes for the client) or
    ``events()`` (decoded JSON payloads), once; ``aclose()`` always, also early."""

    #: "chat": chat.completion.chunk payloads ending in ``data: [DONE]``;
    #: "responses": Responses API events (``event:`` lines, no ``[DONE]``).
    kind: Literal["chat", "responses"]
    headers: dict[str, str]
    #: The usage object, once the stream reported it.
    usage: dict[str, Any] | None

    @abstractmethod
    def sse(self) -> AsyncIterator[bytes]: ...

    @abstractmethod
    def events(self) -> AsyncIterator[dict[str, Any]]: ...

    @abstractmethod
    async def aclose(self) -> None: ...

    def guard(self, wrap: Callable[[AsyncIterator[Any]], AsyncIterator[Any]]) -> bool:
        """Let the host wrap the upstream source (time bounds, first-byte priming, accounting).

        The host's stream classes accept; a stream class of a plugin's own may return
        False, and then gets only the aiohttp-level timeouts of ``timeout_for``."""
        return False

    async def prime(self) -> None:
        """Wait for the first upstream item (after ``guard``), so a failure before it can be retried."""
        prime = getattr(getattr(self, "_source", None), "prime", None)
        if prime is not None:
            await prime()


class _SourceStream(EventStream):
    """What the host's two stream classes share: the source, closing, and the host's guard."""

    def __init__(
        self,
        source: AsyncIterator[Any],
        kind: Literal["chat", "responses"],
        on_close: CloseFn | None,
        headers: dict[str, str] | None,
    ) -> None:
        self.kind = kind
        self._source = source
        self._on_close = on_close
        self.headers = headers or {}
        self.usage = None
        self._closed = False

    def guard(self, wrap: Callable[[AsyncIterator[Any]], AsyncIterator[Any]]) -> bool:
        self._source = wrap(self._source)
        return True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()
        if self._on_close is not None:
            await self._on_close()


class DictEventStream(_SourceStream):
    """A stream a provider builds itself, one dict per event.

    With ``batched=True`` the source yields lists of dicts instead: everything one
    network read of the upstream produced. ``sse()`` then writes each batch to the
    client at once (one ASGI message, not one per chunk), as a byte-forwarding proxy
    would; a batch is never held back to wait for more. ``complete``, asked after each
    batch, says whether the answer is whole (the source will end without yielding
    again): ``data: [DONE]`` then goes out in the same write as that last batch.
    """

    def __init__(
        self,
        source: AsyncIterator[dict[str, Any]] | AsyncIterator[list[dict[str, Any]]],
        *,
        kind: Literal["chat", "responses"] = "chat",
        on_close: CloseFn | None = None,
        headers: dict[str, str] | None = None,
        batched: bool = False,
        complete: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(source, kind, on_close, headers)
        self._batched = batched
        self._complete = complete

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        chat = self.kind == "chat"
        async for batch in self._source if self._batched else _one_each(self._source):
            for item in batch:
                if chat:
                    usage = item.get("usage")
                    if usage:
                        self.usage = usage
                yield item

    async def sse(self) -> AsyncIterator[bytes]:
        if self.kind == "responses":
            async for batch in self._source if self._batched else _one_each(self._source):
                yield b"".join([encode(item, item.get("type")) for item in batch])
            return
        # chat: the hot path of every translating provider, so the frames are built inline.
        dumps = orjson.dumps
        if self._batched:
            async for batch in self._source:
                if not batch:
                    continue
                for item in batch:
                    if item.get("usage"):
                        self.usage = item["usage"]
                frame = b"data: " + b"\n\ndata: ".join([dumps(item) for item in batch]) + b"\n\n"
                if self._complete is not None and self._complete():
                    yield frame + DONE_FRAME
                    async for _ in self._source:  # ends it (a complete source yields no more)
                        pass
                    return
                yield frame
        else:
            async for item in self._source:
                if item.get("usage"):
                    self.usage = item["usage"]
                yield b"data: " + dumps(item) + b"\n\n"
        yield DONE_FRAME


async def _one_each(source: AsyncIterator[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
    async for item in source:
        yield [item]


_USAGE_MARKERS = (b'"usage":{', b'"usage": {')


class RawEventStream(_SourceStream):
    """An upstream's SSE bytes, forwarded as they arrive.

    ``sse()`` does no JSON decoding per chunk: it finds event boundaries with a byte
    search, decodes only an event that carries a usage object, and checks that a
    chat stream ended with ``[DONE]`` (else the upstream was cut off: an error).
    """

    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        kind: Literal["chat", "responses"] = "chat",
        on_close: CloseFn | None = None,
        headers: dict[str, str] | None = None,
        provider: str = "upstream",
    ) -> None:
        super().__init__(source, kind, on_close, headers)
        self._provider = provider

    def _scan(self, complete: bytes) -> None:
        for marker in _USAGE_MARKERS:
            at = complete.rfind(marker)
            if at < 0:
                continue
            start = complete.rfind(b"data:", 0, at)
            end = complete.find(b"\n", at)
            try:
                payload = orjson.loads(complete[start + 5 : end if end >= 0 else None])
            except orjson.JSONDecodeError:
                return
            usage = payload.get("usage") or (payload.get("response") or {}).get("usage")
            if isinstance(usage, dict):
                self.usage = usage
            return

    async def sse(self) -> AsyncIterator[bytes]:
        pending = b""
        done = self.kind != "chat"
        try:
            async for chunk in self._source:
                yield chunk
                buf = pending + chunk if pending else chunk
                cut = buf.rfind(b"\n\n")
                if cut < 0:
                    pending = buf[-65536:]
                    continue
                complete, pending = buf[:cut], buf[cut + 2 :]
                if b'"usage"' in complete:
                    self._scan(complete)
                if not done and complete.endswith(b"[DONE]"):
                    done = True
        except ModelMuxError:
            raise
        if not done:
            raise UpstreamError(
                f"provider {self._provider}: the upstream stream ended before [DONE]",
                code="upstream_stream_truncated",
            )

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        parser = SSEParser()
        done = self.kind != "chat"
        async for chunk in self._source:
            for ev in parser.feed(chunk):
                if ev.data == b"[DONE]":
                    done = True
                    continue
                try:
                    payload = orjson.loads(ev.data)
                except orjson.JSONDecodeError as exc:
                    raise UpstreamError(f"provider {self._provider}: invalid JSON in stream: {exc}") from exc
                if isinstance(payload, dict):
                    usage = payload.get("usage")
                    if not usage and self.kind == "responses":  # response.completed carries it inside
                        usage = (payload.get("response") or {}).get("usage")
                    if usage:
                        self.usage = usage
                    if "error" in payload and self.kind == "chat":
                        err = payload["error"] or {}
                        raise UpstreamError(
                            f"provider {self._provider}: {err.get('message', err)}",
                            code=err.get("code") if isinstance(err, dict) else None,
                        )
                    yield payload
        if not done:
            raise UpstreamError(
                f"provider {self._provider}: the upstream stream ended before [DONE]",
                code="upstream_stream_truncated",
            )


class Provider(ABC):
    """One configured upstream: a ``[providers.NAME]`` table brought to life.

    Created once at start-up by the plugin's factory, shared by all requests, closed
    by ``aclose()`` at shutdown. Use ``host.http`` for upstream calls (the one pooled
    client) and map upstream failures to ``modelmux.errors`` in one place.
    """

    #: True when ``responses()`` forwards to a native Responses API. A class default;
    #: a provider may set it per instance from its settings (e.g. an API version).
    native_responses: bool = False
    #: True when ``list_models()`` returns the ids requests name, so that ``modelmux doctor``
    #: checks the configured models against it; False where it lists something else (Azure
    #: lists base models, requests name deployments).
    lists_model_ids: bool = True

    def __init__(self, name: str, settings: ProviderSettings, host: Host) -> None:
        self.name = name
        self.settings = settings
        self.host = host

    @abstractmethod
    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        """Answer a Chat Completions request (``request.stream`` says which shape)."""

    async def responses(self, request: UpstreamRequest) -> Completion | EventStream:
        """Forward a Responses API request natively (only when ``native_responses``)."""
        raise NotImplementedError(f"provider {self.name} has no native Responses API")

    async def embeddings(self, request: UpstreamRequest) -> Completion:
        """Answer an embeddings request (``POST /v1/embeddings``) with a ``CreateEmbeddingResponse``.

        ``request.body`` is validated (``modelmux.embeddings.validate_embeddings``); ``request.stream``
        is False. Passthrough providers forward the body; translating ones build the answer with
        ``modelmux.embeddings.embedding_response`` (which honours ``encoding_format``). The default:
        a 400 saying this model does not serve embeddings."""
        raise InvalidRequestError(
            f"The model '{request.public_model}' does not serve embeddings (provider {self.name}, upstream model "
            f"{request.model}). Fix: use an embedding model in 'model' (GET /v1/models lists the configured names).",
            param="model",
            code="model_not_embeddings",
        )

    async def list_models(self) -> list[str]:
        """Model ids the upstream offers, for ``modelmux models --provider`` and ``modelmux doctor``."""
        return []

    async def doctor(self) -> list[Check]:
        """Checks for ``modelmux doctor``: credentials, settings, reachability."""
        return []

    async def ready(self) -> bool:
        """Whether the upstream can be reached now (``/health/ready``, cached by the host).

        Keep it cheap (a models list, a HEAD, a token refresh); return False or raise a
        ``ModelMuxError`` whose message says what is wrong. The default trusts the upstream.
        """
        return True

    async def aclose(self) -> None:
        """Release what the provider holds (the shared HTTP client belongs to the host)."""
