"""The exact-match response cache (docs/caching.md).

Opt-in: per model (``cache = true`` in ``[models.NAME]``), for all models
(``[cache] enabled = true``), or per request with the ``x-modelmux-cache`` header
(``use``: read and write, ``skip``: neither, ``refresh``: write without reading).

The key is a SHA-256 of the canonical request: the endpoint, the resolved primary
deployment (provider and upstream model, not the name the client used), the model's
``options`` when it has any, and every
body field in sorted order except ``model``, ``user`` and anything named like a
secret. ``stream`` is part of the key: a streamed answer is stored as the SSE bytes
the client received and replayed as a stream; a JSON answer as its JSON bytes.

Only complete answers of the primary deployment are stored (not a fallback's, not a
stream that ended in an error or that the client left), and none over
``max_entry_bytes``. Entries live ``ttl_seconds``; the backend bounds the total size.
The backend is opened on first use, so an unused cache costs nothing; a backend
failure is logged and the request goes on uncached.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from loguru import logger

from modelmux import metrics
from modelmux.config import SECRET_KEYS, CacheSettings, ModelSettings
from modelmux.errors import InvalidRequestError
from modelmux.router import Deployment
from modelmux.stores import Cache

HEADER = "x-modelmux-cache"
MODES = ("use", "skip", "refresh")
KEY_VERSION = "v1"
#: Body fields that never make two requests different answers.
EXCLUDED_FIELDS = frozenset({"model", "user"})

Kind = Literal["json", "sse"]


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the cache will do for one request."""

    key: str
    deployment: Deployment
    #: False for ``refresh``: go upstream, then store.
    read: bool


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Kind
    body: bytes
    provider: str
    model: str
    stored_at: float
    #: Response headers that belong to the answer (e.g. ``x-modelmux-dropped-tools``).
    headers: dict[str, str] = field(default_factory=dict)


def request_key(api: str, deployment: Deployment, body: Mapping[str, Any], context: Any = None) -> str:
    """``context``: what else decides the answer besides the body (the Responses API's resolved history)."""
    canonical = {k: v for k, v in body.items() if k not in EXCLUDED_FIELDS and not SECRET_KEYS.search(k)}
    parts = [KEY_VERSION, api, deployment.provider, deployment.model, canonical]
    if context is not None:
        parts.append(context)
    payload = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return f"modelmux:{KEY_VERSION}:{api}:{hashlib.sha256(payload).hexdigest()}"


def encode_entry(entry: Entry) -> bytes:
    meta: dict[str, Any] = {
        "kind": entry.kind,
        "provider": entry.provider,
        "model": entry.model,
        "stored_at": entry.stored_at,
    }
    if entry.headers:
        meta["headers"] = entry.headers
    head = orjson.dumps(meta)
    return head + b"\n" + entry.body


def decode_entry(raw: bytes) -> Entry | None:
    head, sep, body = raw.partition(b"\n")
    if not sep:
        return None
    try:
        meta = orjson.loads(head)
        headers = meta.get("headers") or {}
        return Entry(meta["kind"], body, meta["provider"], meta["model"], float(meta["stored_at"]), dict(headers))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def sse_events(body: bytes) -> AsyncIterator[bytes]:
    """A stored stream, replayed one SSE event per chunk."""

    async def gen() -> AsyncIterator[bytes]:
        start = 0
        while start < len(body):
            end = body.find(b"\n\n", start)
            end = len(body) if end < 0 else end + 2
            yield body[start:end]
            start = end

    return gen()


class ResponseCache:
    def __init__(
        self,
        settings: CacheSettings,
        models: Mapping[str, ModelSettings],
        opener: Callable[[], Cache],
    ) -> None:
        self.settings = settings
        self.models = models
        self._opener = opener
        self._backend: Cache | None = None
        self._lock = asyncio.Lock()
        # Asked on every request: decided once (the settings do not change while serving).
        self._maybe_enabled = settings.enabled or any(m.cache for m in models.values())

    @property
    def maybe_enabled(self) -> bool:
        """Whether any request could use the cache without asking for it."""
        return self._maybe_enabled

    def wanted(self, route: str, mode: str | None) -> bool:
        if mode == "skip":
            return False
        if mode in ("use", "refresh"):
            return True
        model = self.models.get(route)
        if model is not None and model.cache is not None:
            return model.cache
        return self.settings.enabled

    def lookup(
        self,
        api: str,
        body: Mapping[str, Any],
        header: str | None,
        deployment: Deployment,
        context: Any = None,
    ) -> Lookup | None:
        """The cache's part in this request, or None when it takes none."""
        mode = header.strip().lower() if header is not None else None
        if mode is not None and mode not in MODES:
            raise InvalidRequestError(
                f"Invalid {HEADER} header {header!r}: use one of {', '.join(MODES)}.", param=HEADER
            )
        if not self.wanted(deployment.route, mode):
            return None
        model = self.models.get(deployment.route)
        if model is not None and model.options:  # e.g. input_type: another answer for the same body
            context = {"context": context, "options": model.options}
        return Lookup(request_key(api, deployment, body, context), deployment, read=mode != "refresh")

    async def backend(self) -> Cache:
        if self._backend is None:
            async with self._lock:
                if self._backend is None:
                    # Backends may open files or sockets in their constructor.
                    self._backend = await asyncio.to_thread(self._opener)
        return self._backend

    async def get(self, lookup: Lookup) -> Entry | None:
        entry: Entry | None = None
        try:
            raw = await (await self.backend()).get(lookup.key)
            entry = decode_entry(raw) if raw is not None else None
        except Exception as exc:
            logger.warning("response cache lookup failed, answering uncached: {}: {}", type(exc).__name__, exc)
        metrics.CACHE_REQUESTS.labels("hit" if entry is not None else "miss").inc()
        return entry

    async def put(
        self,
        lookup: Lookup,
        kind: Kind,
        body: bytes,
        deployment: Deployment,
        headers: Mapping[str, str] | None = None,
    ) -> bool:
        if deployment != lookup.deployment or len(body) > self.settings.max_entry_bytes:
            return False
        entry = Entry(kind, body, deployment.provider, deployment.model, time.time(), dict(headers or {}))
        try:
            await (await self.backend()).set(lookup.key, encode_entry(entry), self.settings.ttl_seconds)
        except Exception as exc:
            logger.warning("response cache store failed: {}: {}", type(exc).__name__, exc)
            return False
        return True

    async def tee(
        self,
        frames: AsyncIterator[bytes],
        lookup: Lookup,
        deployment: Deployment,
        ok: Callable[[], bool],
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[bytes]:
        """Pass a stream to the client and store it once it ended well (bounded buffer): when
        ``ok()`` says so after the last frame."""
        limit = self.settings.max_entry_bytes
        parts: list[bytes] = []
        size = 0
        async for frame in frames:
            if size <= limit:
                parts.append(frame)
                size += len(frame)
            yield frame
        # Reached only when the stream ran to its end (a client that left cancels us at a yield).
        if size <= limit and ok():
            await self.put(lookup, "sse", b"".join(parts), deployment, headers)

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
            self._backend = None
