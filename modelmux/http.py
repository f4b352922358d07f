"""The host's upstream HTTP client and the one place transport failures become ModelMux errors.

One pooled ``aiohttp.ClientSession`` per process, opened in the app's lifespan and
handed to providers as ``host.http``. aiohttp was chosen by measurement: it had the
lowest CPU per request of the clients compared (docs/performance.md, "The upstream client: aiohttp, not httpx").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import aiohttp
import aiohttp.abc
import orjson
from yarl import URL

from modelmux.errors import (
    ModelMuxError,
    NotFoundError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRequestError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from modelmux.logs import scrub, scrub_bytes
from modelmux.provider import ProviderSettings


def open_client(trace_configs: list[aiohttp.TraceConfig] | None = None) -> aiohttp.ClientSession:
    """The pooled client; call inside a running event loop. ``trace_configs``: OpenTelemetry spans."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        trace_configs=trace_configs or None,
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
        auto_decompress=True,
        raise_for_status=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )


#: Bodies from this size on are written a slice at a time (``request_data``).
LARGE_BODY = 1024 * 1024


class _SlicedBody(aiohttp.BytesPayload):
    """A large request body written a slice at a time, each slice awaited: the transport holds a
    slice, not a copy of the whole body (a request with images is tens of MB)."""

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: aiohttp.abc.AbstractStreamWriter, content_length: int | None) -> None:
        view = memoryview(self._value)
        if content_length is not None:
            view = view[:content_length]
        for at in range(0, len(view), LARGE_BODY):
            await writer.write(view[at : at + LARGE_BODY])


def request_data(body: bytes) -> bytes | aiohttp.BytesPayload:
    """What to pass as ``data=`` for a request body: large ones are written a slice at a time
    (the ``Content-Length`` is still sent; give the ``content-type`` in the headers)."""
    return body if len(body) < LARGE_BODY else _SlicedBody(body)


def timeout_for(settings: ProviderSettings, *, stream: bool = False) -> aiohttp.ClientTimeout:
    """The aiohttp timeouts of one upstream call from the provider's settings.

    Non-stream: connect, first byte (per read) and total. Stream: connect, and a per-read
    backstop; the precise first-byte, idle-gap and total bounds of a stream are enforced by
    the host around the provider's stream (``modelmux.timeouts.StreamGuard``), so every
    provider gets them without code of its own.
    """
    total = settings.timeout_seconds
    first = settings.first_byte_timeout_seconds
    if stream:
        return aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.connect_timeout_seconds,
            sock_read=max(first or total, settings.idle_timeout_seconds or total),
        )
    return aiohttp.ClientTimeout(total=total, sock_connect=settings.connect_timeout_seconds, sock_read=first)


def transport_error(provider: str, exc: BaseException) -> ModelMuxError | None:
    """The ModelMux error for a transport failure (timeout, refused, cut), or None if it is not one."""
    if isinstance(exc, ModelMuxError):
        return exc
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return UpstreamTimeoutError(f"provider {provider}: the upstream did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(
            f"provider {provider}: cannot connect to {exc.host}:{exc.port} ({exc.os_error}). "
            "Fix: check the provider's base_url/endpoint and that the upstream is running.",
            code="upstream_unreachable",
        )
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ConnectionResetError)):
        return UpstreamError(
            f"provider {provider}: the upstream closed the connection early ({exc})",
            code="upstream_disconnected",
        )
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(f"provider {provider}: upstream request failed: {exc}")
    return None


#: Upper bound of one readiness probe's HTTP call: below the host's 5 s bound on ``ready()``
#: (``modelmux.health.READY_TIMEOUT``), so a slow upstream reports its own error, not a timeout.
PROBE_SECONDS = 3.0


def probe_timeout(settings: ProviderSettings) -> aiohttp.ClientTimeout:
    """The timeout of a cheap readiness call (``Provider.ready``): short, whatever the request timeout."""
    return aiohttp.ClientTimeout(
        total=min(PROBE_SECONDS, settings.timeout_seconds),
        sock_connect=min(PROBE_SECONDS, settings.connect_timeout_seconds),
    )


def raise_mapped(provider: str, exc: Exception) -> NoReturn:
    """Raise ``exc`` again as the ModelMux error naming the provider (a ModelMuxError as it is)."""
    if isinstance(exc, ModelMuxError):
        raise exc
    mapped = transport_error(provider, exc)
    if mapped is None:
        raise exc
    raise mapped from exc


@asynccontextmanager
async def upstream_errors(provider: str) -> AsyncIterator[None]:
    """Map transport exceptions raised inside the block to ModelMux errors naming the provider."""
    try:
        yield
    except Exception as exc:
        raise_mapped(provider, exc)


def retry_after(headers: Any) -> float | None:
    raw = headers.get("retry-after") if headers is not None else None
    if not raw:
        ms = headers.get("retry-after-ms") if headers is not None else None
        return float(ms) / 1000 if ms and ms.replace(".", "", 1).isdigit() else None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def error_message(body: bytes) -> tuple[str, Any]:
    """The message of an OpenAI-, Anthropic- or Google-shaped error body (known secrets scrubbed:
    an upstream or a proxy may quote the credentials we sent), and the parsed body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        # scrubbed whole, then cut: a cut through a secret would leave its start
        return scrub(body[:4096].decode("utf-8", "replace"))[:500].strip() or "(empty body)", None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return scrub(str(err["message"])), data
    if isinstance(err, str):
        return scrub(err), data
    if isinstance(data, dict) and data.get("message"):
        return scrub(str(data["message"])), data
    return scrub(body[:500].decode("utf-8", "replace")), data


def error_from_status(
    provider: str, status: int, body: bytes, headers: Any = None, *, auth_fix: str = ""
) -> ModelMuxError:
    """The ModelMux error for an upstream's non-2xx answer.

    A 4xx about the request reaches the client with its status and message (and the
    upstream's own body when it is OpenAI-shaped); credentials problems are a 502
    that names the provider and the fix; 429 keeps ``retry-after``.
    """
    message, data = error_message(body)
    err = data.get("error") if isinstance(data, dict) else None
    # Only a body in OpenAI's own shape is passed on (not Anthropic's ``{"type": "error", "error": {...}}``
    # nor Google's ``{"error": {"code", "status"}}``): theirs are rewritten in OpenAI's shape.
    openai_shaped = isinstance(err, dict) and "message" in err and "type" in err and "type" not in data
    if openai_shaped:
        body = scrub_bytes(body)
    if status in (401, 403):
        fix = auth_fix or f"check the credentials of [providers.{provider}]"
        return UpstreamAuthError(
            f"provider {provider}: the upstream rejected our credentials ({status}: {message}). Fix: {fix}."
        )
    if status == 429:
        return RateLimitError(
            f"provider {provider}: rate limited by the upstream: {message}",
            retry_after=retry_after(headers),
        )
    if status == 404:
        return NotFoundError(f"provider {provider}: {message}", body=body if openai_shaped else None)
    if 400 <= status < 500:
        return UpstreamRequestError(message, status_code=status, body=body if openai_shaped else None)
    if status in (503, 529):  # 529: Anthropic's "overloaded"
        return UpstreamUnavailableError(
            f"provider {provider}: upstream overloaded ({status}): {message}", retry_after=retry_after(headers)
        )
    return UpstreamError(f"provider {provider}: upstream error {status}: {message}", code="upstream_error")


#: Maps an upstream's non-2xx answer (status, body, headers) to the error the client gets.
ErrorMapper = Callable[[int, bytes, Mapping[str, str]], ModelMuxError]

#: Cap on an error body read into memory (they are small; a huge one is cut, not buffered).
MAX_ERROR_BYTES = 64 * 1024


async def open_upstream(
    http: aiohttp.ClientSession,
    url: str | URL,
    *,
    provider: str,
    data: bytes | aiohttp.BytesPayload | None,
    headers: Mapping[str, str],
    client_timeout: aiohttp.ClientTimeout,
    errors: ErrorMapper | None = None,
    method: str = "POST",
    params: Mapping[str, str] | None = None,
) -> aiohttp.ClientResponse:
    """Send the request and return the response once its status is 2xx (body unread).

    Any other status is read (at most 64 KiB) and raised as ``errors(status, body, headers)``, or
    as ``error_from_status`` without a mapper; a transport failure as its ModelMux error. The caller
    owns the returned response: ``read_body`` it, or ``release()``/``close()`` it when done.
    """
    # try/except rather than ``async with upstream_errors``: the same mapping without a generator-based
    # context manager per call (this and ``read_body`` run for every passthrough request).
    try:
        resp = await http.request(method, url, data=data, headers=headers, params=params, timeout=client_timeout)
        if resp.status < 300:
            return resp
        try:
            body = await resp.content.read(MAX_ERROR_BYTES)
        finally:
            resp.close()
    except Exception as exc:
        raise_mapped(provider, exc)
    if errors is not None:
        raise errors(resp.status, body, resp.headers)
    raise error_from_status(provider, resp.status, body, resp.headers)


async def read_body(resp: aiohttp.ClientResponse, *, provider: str) -> bytes:
    """The whole body of a response ``open_upstream`` returned; the connection goes back to the pool."""
    try:
        return await resp.read()
    except Exception as exc:
        raise_mapped(provider, exc)
    finally:
        resp.release()
