"""Fetching images for providers that cannot take an image URL (Claude on Vertex, Bedrock).

A client must never be able to make the gateway read internal URLs: every address a
host name resolves to, and every IP literal, is checked, and private, loopback,
link-local, reserved and multicast addresses are refused unless the host is listed
in ``server.url_fetch_allow``; an IPv4 address embedded in an IPv6 one (mapped,
IPv4-compatible, NAT64, 6to4, Teredo) is checked as well. The check runs in the
connector's resolver, so the address checked is the address connected to (no
DNS-rebinding window), and redirects are followed by hand so each hop is checked too.

A client must not be able to make the gateway hold much memory either
(``[server.images]``): a request names at most ``max_per_request`` image URLs (counted
before anything is fetched), each image is at most ``max_bytes`` and all of them
together at most ``max_total_bytes`` (a declared ``content-length`` is charged before
the body is read, and bytes are counted while reading, so fetching stops as soon as
the budget is spent). A request's images are fetched once, a few at a time, and kept
only base64-encoded, encoded piece by piece as they arrive (no whole-image encode
blocks the event loop, and the raw bytes are never held whole); ``RequestImages``
keeps them for every attempt of that one request (retries, fallbacks) and is dropped
with it.
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from modelmux.errors import InvalidRequestError

DEFAULT_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_REDIRECTS = 3
#: Bytes read (and base64-encoded) at a time: a multiple of 3, so pieces encode without padding.
READ_SIZE = 3 * 32 * 1024

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: RFC 8215 local-use NAT64: translates to addresses of the operator's own network.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


@dataclass(frozen=True, slots=True)
class Image:
    """An image as providers send it: its type and its bytes base64-encoded."""

    media_type: str
    #: The image, base64-encoded (what Anthropic Messages and Converse's JSON carry).
    base64: str
    #: Size of the image in bytes.
    size: int = 0

    @property
    def data(self) -> bytes:
        """The image's bytes (decoded on each use: providers send ``base64``)."""
        return binascii.a2b_base64(self.base64)


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries, which a connection to it may end up reaching."""
    found: list[ipaddress.IPv4Address] = []
    value = int(addr)
    if addr in _NAT64 or 1 < value < 2**32:  # NAT64's well-known prefix, or IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if addr.sixtofour is not None:
        found.append(addr.sixtofour)
    if addr.teredo is not None:
        found.extend(addr.teredo)
    return found


def _blocked(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d is that IPv4 address
            return _blocked(str(addr.ipv4_mapped))
        if addr in _NAT64_LOCAL or any(_blocked(str(inner)) for inner in _embedded_ipv4(addr)):
            return True
    return not addr.is_global or addr.is_multicast


class _GuardedResolver(AbstractResolver):
    def __init__(self, allow: frozenset[str]) -> None:
        self._inner = DefaultResolver()
        self._allow = allow

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host.lower() not in self._allow:
            for r in results:
                if _blocked(r["host"]):
                    raise InvalidRequestError(
                        f"image URL host {host!r} resolves to a private or internal address; ModelMux does not "
                        "fetch from those. An operator can allow it in server.url_fetch_allow.",
                        param="image_url",
                        code="image_url_blocked",
                    )
        return results

    async def close(self) -> None:
        await self._inner.close()


def parse_data_url(url: str, accept: tuple[str, ...] = DEFAULT_TYPES) -> Image:
    """``data:image/png;base64,...`` -> Image. A malformed one is a 400.

    A base64 payload is checked by decoding it, and then kept as sent: not encoded again.
    """
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:"):
        raise InvalidRequestError(
            "malformed data: URL in image_url; expected data:<type>;base64,<data>", param="image_url"
        )
    meta = header[5:].split(";")
    media_type = (meta[0] or "text/plain").lower()
    _check_type(media_type, accept)
    if "base64" in meta[1:]:
        try:
            size = len(binascii.a2b_base64(payload, strict_mode=True))
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestError(f"data: URL in image_url is not valid base64: {exc}", param="image_url") from exc
        return Image(media_type, payload, size)
    data = unquote_to_bytes(payload)
    return Image(media_type, binascii.b2a_base64(data, newline=False).decode("ascii"), len(data))


def _check_type(media_type: str, accept: tuple[str, ...]) -> None:
    if media_type not in accept:
        raise InvalidRequestError(
            f"image type {media_type!r} is not supported by this model; use one of {', '.join(accept)}",
            param="image_url",
            code="invalid_image_format",
        )


def image_urls(messages: Any) -> list[str]:
    """Every image URL of a chat ``messages`` list that is not a ``data:`` URL, in order, repeats
    included. Malformed parts are skipped: the translators refuse them with their own message."""
    found: list[str] = []
    if not isinstance(messages, list):
        return found
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            if isinstance(url, str) and url and not url.startswith("data:"):
                found.append(url)
    return found


class _Budget:
    """The bytes one request may still fetch; every use of an image is charged (each is sent)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int, used: int = 0) -> None:
        self.limit = limit
        self.used = used

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise InvalidRequestError(
                f"the images of this request add up to more than {self.limit} bytes, the limit ModelMux "
                "fetches for one request (server.images.max_total_bytes). Send fewer or smaller images, "
                "or ask the operator to raise server.images.max_total_bytes.",
                param="messages",
                code="images_too_large",
            )


class ImageFetcher:
    """The gateway's one image fetcher (``host.images``): its pool, SSRF guard and limits.

    Providers use it through ``for_request()`` (or the ``RequestImages`` the router
    puts on ``UpstreamRequest.images``), which applies the per-request limits and
    fetches each image once per client request.
    """

    def __init__(
        self,
        allow: list[str] | tuple[str, ...] = (),
        *,
        max_bytes: int = 20 * 1024 * 1024,
        timeout_seconds: float = 10.0,
        max_per_request: int = 20,
        max_total_bytes: int = 50 * 1024 * 1024,
        concurrency: int = 4,
    ) -> None:
        self.allow = frozenset(h.lower() for h in allow)
        self.max_bytes = max_bytes
        self.max_per_request = max_per_request
        self.max_total_bytes = max_total_bytes
        self.concurrency = max(1, concurrency)
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, allow: Iterable[str], settings: Any) -> ImageFetcher:
        """From ``server.url_fetch_allow`` and ``[server.images]`` (``modelmux.config.ImageSettings``)."""
        return cls(
            list(allow),
            max_bytes=settings.max_bytes,
            timeout_seconds=settings.timeout_seconds,
            max_per_request=settings.max_per_request,
            max_total_bytes=settings.max_total_bytes,
            concurrency=settings.concurrency,
        )

    def for_request(self) -> RequestImages:
        """A fresh per-request view: its own cache and budget."""
        return RequestImages(self)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=_GuardedResolver(self.allow), limit=32)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        return self._session

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequestError(
                f"image URL must be http(s), data: or a known file; got {url[:80]!r}", param="image_url"
            )
        host = parts.hostname.lower()
        if host in self.allow:
            return
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: checked by the resolver when connecting
        if _blocked(str(literal)):
            raise InvalidRequestError(
                f"image URL points at the internal address {host}; ModelMux does not fetch from those. "
                "An operator can allow it in server.url_fetch_allow.",
                param="image_url",
                code="image_url_blocked",
            )

    async def load(self, url: str, accept: tuple[str, ...] = DEFAULT_TYPES) -> Image:
        """An image from a ``data:`` URL or an http(s) URL (one image: the per-image limit only)."""
        if url.startswith("data:"):
            return parse_data_url(url, accept)
        return await self.fetch(url, accept)

    async def fetch(
        self, url: str, accept: tuple[str, ...] = DEFAULT_TYPES, *, budget: _Budget | None = None, uses: int = 1
    ) -> Image:
        """Fetch one image; ``budget``, if given, is charged ``uses`` times its bytes."""
        client = self._client()
        for _ in range(MAX_REDIRECTS + 1):
            self._check_url(url)
            try:
                async with client.get(url, allow_redirects=False) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        continue
                    if resp.status != 200:
                        raise InvalidRequestError(
                            f"could not fetch image {url[:200]}: HTTP {resp.status}", param="image_url"
                        )
                    media_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                    _check_type(media_type, accept)
                    return await self._read(resp, url, media_type, budget, uses)
            except InvalidRequestError:
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise InvalidRequestError(
                    f"could not fetch image {url[:200]}: {type(exc).__name__} {exc}".strip(), param="image_url"
                ) from exc
        raise InvalidRequestError(f"image URL redirected more than {MAX_REDIRECTS} times", param="image_url")

    async def _read(
        self, resp: aiohttp.ClientResponse, url: str, media_type: str, budget: _Budget | None, uses: int
    ) -> Image:
        """The body, base64-encoded as it arrives, within the per-image limit and the budget."""
        declared = resp.content_length
        if declared is not None:
            if declared > self.max_bytes:
                raise self._too_big(url)
            if budget is not None:
                budget.take(declared * uses)  # refused before reading a byte
        charged = declared or 0
        size = 0
        encoded = bytearray()
        rest = b""
        async for chunk in resp.content.iter_chunked(READ_SIZE):
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_big(url)
            if budget is not None and size > charged:  # more than declared, or nothing declared
                budget.take((size - charged) * uses)
                charged = size
            if rest:
                chunk, rest = rest + chunk, b""
            cut = len(chunk) - len(chunk) % 3
            if cut < len(chunk):
                rest = chunk[cut:]
            encoded += binascii.b2a_base64(memoryview(chunk)[:cut], newline=False)
        if rest:
            encoded += binascii.b2a_base64(rest, newline=False)
        return Image(media_type, encoded.decode("ascii"), size)

    def _too_big(self, url: str) -> InvalidRequestError:
        return InvalidRequestError(
            f"image at {url[:200]} is larger than {self.max_bytes} bytes (server.images.max_bytes); "
            "send a smaller image",
            param="image_url",
            code="image_too_large",
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class RequestImages:
    """The images of one client request: each URL fetched at most once, within the request's
    limits, and kept for every attempt of that request (retries and fallbacks translate the
    request again and find them here). Dropped with the request."""

    __slots__ = ("_cache", "_fetcher")

    def __init__(self, fetcher: ImageFetcher) -> None:
        self._fetcher = fetcher
        self._cache: dict[str, Image] = {}

    async def prefetch(self, messages: Any, accept: tuple[str, ...] = DEFAULT_TYPES) -> None:
        """Fetch every image URL of a chat ``messages`` list (see ``fetch_all``)."""
        urls = image_urls(messages)
        if urls:
            await self.fetch_all(urls, accept)

    async def fetch_all(self, urls: list[str], accept: tuple[str, ...] = DEFAULT_TYPES) -> list[Image]:
        """The images of ``urls`` (http(s) or ``data:``), in order, fetched a few at a time.

        The count is checked before anything is fetched; the bytes of every use of an image
        count (an image named twice is sent twice). On the first failure the other fetches stop.
        """
        fetched = [url for url in urls if not url.startswith("data:")]
        if fetched:
            await self._fetch_all(Counter(fetched), accept)
        return [await self.load(url, accept) for url in urls]

    async def load(self, url: str, accept: tuple[str, ...] = DEFAULT_TYPES) -> Image:
        """The image of a ``data:`` URL, or of an http(s) URL (fetched now unless fetched before)."""
        if url.startswith("data:"):
            return parse_data_url(url, accept)
        image = self._cache.get(url)
        if image is None:
            # One at a time: counted together with what this request fetched before.
            uses = Counter(self._cache)
            uses[url] += 1
            await self._fetch_all(uses, accept)
            image = self._cache[url]
        _check_type(image.media_type, accept)
        return image

    async def _fetch_all(self, uses: Counter[str], accept: tuple[str, ...]) -> None:
        fetcher = self._fetcher
        count = sum(uses.values())
        if count > fetcher.max_per_request:
            raise InvalidRequestError(
                f"this request has {count} image URLs; ModelMux fetches at most {fetcher.max_per_request} "
                "for one request (server.images.max_per_request). Send fewer images, inline small ones as "
                "data: URLs, or ask the operator to raise server.images.max_per_request.",
                param="messages",
                code="too_many_images",
            )
        budget = _Budget(fetcher.max_total_bytes)
        missing: list[str] = []
        for url, n in uses.items():
            cached = self._cache.get(url)
            if cached is None:
                missing.append(url)
            else:
                budget.take(cached.size * n)
        if not missing:
            return
        if len(missing) == 1:
            self._cache[missing[0]] = await fetcher.fetch(missing[0], accept, budget=budget, uses=uses[missing[0]])
            return
        gate = asyncio.Semaphore(fetcher.concurrency)

        async def one(url: str) -> None:
            async with gate:
                self._cache[url] = await fetcher.fetch(url, accept, budget=budget, uses=uses[url])

        tasks = [asyncio.ensure_future(one(url)) for url in missing]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # the first failure decides: stop the other fetches now
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # The failed tasks keep their errors, whose tracebacks run through this frame: a cycle
            # holding the partly read images until the garbage collector runs. Break it.
            tasks.clear()
            raise


def per_request(images: RequestImages | ImageFetcher) -> RequestImages:
    """The request's images; a bare ``ImageFetcher`` (a provider called directly) gets a fresh view."""
    return images.for_request() if isinstance(images, ImageFetcher) else images
