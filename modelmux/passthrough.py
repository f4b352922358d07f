"""Forwarding to an upstream that already speaks the OpenAI API, without re-encoding it.

Used by passthrough providers (vLLM and any OpenAI-compatible server, Azure OpenAI):
the request body is the client's dict with the model replaced, serialised once; a
non-stream answer is the upstream's bytes; a stream is the upstream's SSE bytes as
they arrive (``RawEventStream``). The upstream's status decides everything before
the first byte: a non-2xx becomes the fitting ``ModelMuxError`` (OpenAI-shaped
bodies are kept intact), so the router can still retry or fall back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal

import aiohttp
import orjson

from modelmux.errors import UpstreamError
from modelmux.http import ErrorMapper, open_upstream, raise_mapped, upstream_errors
from modelmux.provider import Completion, RawEventStream, UpstreamRequest

#: Rewrites the upstream's SSE byte stream (e.g. to drop a vendor's extra first event).
StreamFilter = Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]


def request_body(request: UpstreamRequest) -> bytes:
    """The client's body with only ``model`` replaced (a shallow copy; nothing else is touched)."""
    body = dict(request.body)
    body["model"] = request.model
    if bool(body.get("stream")) != request.stream:
        body["stream"] = request.stream
    return orjson.dumps(body)


async def read_completion(resp: aiohttp.ClientResponse, *, provider: str) -> Completion:
    """A non-stream answer: the upstream's JSON bytes, untouched."""
    # ``read_body`` inlined: this runs for every non-stream passthrough request, where a call's
    # extra coroutine frame is measurable (docs/performance.md, "One upstream helper").
    try:
        raw = await resp.read()
    except Exception as exc:
        raise_mapped(provider, exc)
    finally:
        resp.release()
    if "json" not in resp.content_type:
        raise UpstreamError(
            f"provider {provider}: the upstream answered {resp.content_type or 'no content type'} "
            "instead of JSON. Fix: check that base_url points at an OpenAI-compatible API (usually ending in /v1)."
        )
    completion = Completion(raw=raw)
    # Parsed here, inside the router's attempt, so a cut or corrupt answer is a retryable 502, not
    # a 200 with broken JSON. Free: the usage (and any translation) reads the parsed copy kept here.
    try:
        data = completion.json()
    except UpstreamError as exc:
        raise UpstreamError(
            f"provider {provider}: the upstream answered invalid JSON ({exc.message.rsplit(': ', 1)[-1]}). "
            "Fix: check the upstream's logs, and any proxy between that may cut answers",
            code="upstream_invalid_json",
        ) from exc
    if not isinstance(data, dict):
        raise UpstreamError(
            f"provider {provider}: the upstream answered a JSON {type(data).__name__}, not an object. "
            "Fix: check that base_url points at an OpenAI-compatible API",
            code="upstream_invalid_json",
        )
    return completion


async def _chunks(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[bytes]:
    # Bytes as the socket delivers them: no line splitting, no decoding, no buffering.
    async with upstream_errors(provider):
        async for chunk in resp.content.iter_any():
            yield chunk


def raw_stream(
    resp: aiohttp.ClientResponse,
    *,
    provider: str,
    kind: Literal["chat", "responses"] = "chat",
    transform: StreamFilter | None = None,
) -> RawEventStream:
    """The upstream's SSE stream, forwarded as it arrives.

    Closing it (also when the client went away) closes the upstream connection at
    once unless the body was read to its end, so the upstream stops generating.
    """
    if "event-stream" not in resp.content_type:
        resp.close()
        raise UpstreamError(
            f"provider {provider}: asked for a stream, the upstream answered {resp.content_type or 'no content type'}"
        )

    async def close() -> None:
        if resp.content.at_eof():
            resp.release()  # finished: the connection goes back to the pool
        else:
            resp.close()  # cut short: drop the connection so the upstream sees it

    source = _chunks(resp, provider)
    return RawEventStream(
        transform(source) if transform is not None else source,
        kind=kind,
        on_close=close,
        provider=provider,
    )


async def get_json(
    http: aiohttp.ClientSession,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str],
    client_timeout: aiohttp.ClientTimeout,
    params: Mapping[str, str] | None = None,
    errors: ErrorMapper | None = None,
) -> Any:
    """GET a small JSON document (model lists, health checks)."""
    resp = await open_upstream(
        http,
        url,
        provider=provider,
        data=None,
        headers=headers,
        client_timeout=client_timeout,
        errors=errors,
        method="GET",
        params=params,
    )
    completion = await read_completion(resp, provider=provider)
    return completion.json()
