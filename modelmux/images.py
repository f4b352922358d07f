"""Fetching images for providers that cannot take an image URL (Claude on Vertex, Bedrock).

A client must never be able to make the gateway read internal URLs: every address a
host name resolves to, and every IP literal, is checked, and private, loopback,
link-local, reserved and multicast addresses are refused unless the host is listed
in ``server.url_fetch_allow``. The check runs in the connector's resolver, so the
address checked is the address connected to (no DNS-rebinding window), and
redirects are followed by hand so each hop is checked too. Bodies are bounded in
size and time, and must be an image type the model accepts.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from modelmux.errors import InvalidRequestError

DEFAULT_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class Image:
    media_type: str
    data: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode()


def _blocked(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
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
    """``data:image/png;base64,...`` -> Image. A malformed one is a 400."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:"):
        raise InvalidRequestError(
            "malformed data: URL in image_url; expected data:<type>;base64,<data>", param="image_url"
        )
    meta = header[5:].split(";")
    media_type = (meta[0] or "text/plain").lower()
    try:
        data = base64.b64decode(payload, validate=True) if "base64" in meta[1:] else unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"data: URL in image_url is not valid base64: {exc}", param="image_url") from exc
    _check_type(media_type, accept)
    return Image(media_type, data)


def _check_type(media_type: str, accept: tuple[str, ...]) -> None:
    if media_type not in accept:
        raise InvalidRequestError(
            f"image type {media_type!r} is not supported by this model; use one of {', '.join(accept)}",
            param="image_url",
            code="invalid_image_format",
        )


class ImageFetcher:
    def __init__(
        self,
        allow: list[str] | tuple[str, ...] = (),
        *,
        max_bytes: int = 20 * 1024 * 1024,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.allow = frozenset(h.lower() for h in allow)
        self.max_bytes = max_bytes
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

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
        """An image from a ``data:`` URL or an http(s) URL."""
        if url.startswith("data:"):
            return parse_data_url(url, accept)
        return await self.fetch(url, accept)

    async def fetch(self, url: str, accept: tuple[str, ...] = DEFAULT_TYPES) -> Image:
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
                    if (resp.content_length or 0) > self.max_bytes:
                        raise self._too_big(url)
                    data = bytearray()
                    async for chunk in resp.content.iter_chunked(65536):
                        data += chunk
                        if len(data) > self.max_bytes:
                            raise self._too_big(url)
                    return Image(media_type, bytes(data))
            except InvalidRequestError:
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise InvalidRequestError(
                    f"could not fetch image {url[:200]}: {type(exc).__name__} {exc}".strip(), param="image_url"
                ) from exc
        raise InvalidRequestError(f"image URL redirected more than {MAX_REDIRECTS} times", param="image_url")

    def _too_big(self, url: str) -> InvalidRequestError:
        return InvalidRequestError(
            f"image at {url[:200]} is larger than {self.max_bytes} bytes", param="image_url", code="image_too_large"
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
