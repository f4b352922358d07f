"""Search backends: where the ``web_search`` tool sends the model's query.

A backend is a ``SearchBackend`` subclass registered in ``BACKENDS`` under the name users
write in ``[tools.web_search] backend``. It turns one ``SearchQuery`` into ``SearchResult``s
(best first) and raises ``SearchError`` for anything that is not an answer: unreachable,
timed out, a non-2xx status, a body that is not the expected JSON. The tool does the rest
(domain filter, the result count, the token budget, numbering), the same for every backend.

To add one (Brave, Tavily, ...): subclass ``SearchBackend``, decorate it with
``@register_backend`` and document what it sends (docs/guides/web-search.md).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp

from modelmux_tool_web_search.settings import WebSearchSettings

#: A backend answer larger than this is refused (SearXNG's JSON for one page is about 50 KB).
MAX_ANSWER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search, as the tool asks a backend for it."""

    #: The model's query.
    text: str
    #: Domains the client allows (``filters.allowed_domains``), subdomains included; empty: any.
    #: The tool filters the results again, so a backend may treat this as a hint.
    allowed_domains: tuple[str, ...] = ()
    #: ISO 3166-1 country of the client's ``user_location`` (``"US"``), if any.
    country: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    title: str
    #: A short text from the page about the query (plain text).
    snippet: str


class SearchError(Exception):
    """The backend gave no usable answer. The message is safe to show the model and to log: no secrets."""


class SearchBackend(ABC):
    """One search service. Instances live as long as the tool; calls use the host's pooled client."""

    #: The name in ``[tools.web_search] backend``.
    name: ClassVar[str]

    def __init__(self, settings: WebSearchSettings) -> None:
        self.settings = settings
        headers = {"accept": "application/json", **settings.headers}
        key = settings.api_key.get_secret_value()
        if key:
            if settings.api_key_header:
                headers[settings.api_key_header] = key
            else:
                headers["authorization"] = f"Bearer {key}"
        # user:password@ in the URL becomes a Basic authorization header (the settings refuse it
        # together with another authorization), and the URL without it is what calls and messages use.
        parts = urlsplit(settings.url)
        if parts.username is not None:
            auth = aiohttp.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
            headers["authorization"] = auth.encode()
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.shown_url = self.url
        self.headers = headers
        self.timeout = aiohttp.ClientTimeout(
            total=settings.timeout_seconds, sock_connect=min(5.0, settings.timeout_seconds)
        )
        self._secrets = [v for v in (key, *headers.values(), unquote(parts.password or "")) if len(v) >= 4]

    @abstractmethod
    async def search(self, http: aiohttp.ClientSession, query: SearchQuery) -> list[SearchResult]:
        """The results for ``query``, best first; raise ``SearchError`` when there is no answer."""

    async def check(self, http: aiohttp.ClientSession) -> str:
        """For ``modelmux doctor``: raise ``SearchError`` unless the backend answers; return what it said."""
        results = await self.search(http, SearchQuery("modelmux"))
        return f"{self.name} at {self.shown_url} answered a test search with {len(results)} results"

    def safe(self, text: str) -> str:
        """``text`` (e.g. an exception's message) without any configured secret in it."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def get_json(self, http: aiohttp.ClientSession, url: str, params: Mapping[str, str]) -> Any:
        """GET ``url`` and decode its JSON answer; every failure is a ``SearchError`` saying what went wrong."""
        try:
            async with http.get(url, params=params, headers=self.headers, timeout=self.timeout) as resp:
                body = await resp.content.read(MAX_ANSWER_BYTES + 1)
                status = resp.status
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise SearchError(
                f"{self.name} at {self.shown_url} did not answer within {self.settings.timeout_seconds:g} s"
            ) from exc
        except aiohttp.ClientError as exc:
            reason = self.safe(str(exc)) or type(exc).__name__
            raise SearchError(f"cannot reach {self.name} at {self.shown_url}: {reason}") from exc
        if len(body) > MAX_ANSWER_BYTES:
            raise SearchError(f"{self.name} at {self.shown_url} answered more than {MAX_ANSWER_BYTES} bytes")
        if not 200 <= status < 300:
            raise SearchError(f"{self.name} at {self.shown_url} answered HTTP {status}{self.status_hint(status)}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise SearchError(f"{self.name} at {self.shown_url} answered something that is not JSON") from exc

    def status_hint(self, status: int) -> str:
        """A sentence added to a non-2xx error: what usually causes ``status`` with this backend."""
        return ""


BACKENDS: dict[str, type[SearchBackend]] = {}

B = TypeVar("B", bound=type[SearchBackend])


def register_backend(cls: B) -> B:
    BACKENDS[cls.name] = cls
    return cls


def make_backend(settings: WebSearchSettings) -> SearchBackend:
    return BACKENDS[settings.backend](settings)


@register_backend
class SearXNG(SearchBackend):
    """A SearXNG instance's JSON API: ``GET {url}/search?q=...&format=json``.

    The instance must allow the ``json`` format (``search.formats`` in its settings.yml), or it
    answers 403. Sent: the query (with ``site:`` operators for allowed domains), and the
    configured ``language`` (with the client's country), ``categories``, ``engines``,
    ``time_range`` and ``safesearch``. Read: ``results[].url``, ``.title``, ``.content``.
    """

    name = "searxng"

    def params(self, query: SearchQuery) -> dict[str, str]:
        settings = self.settings
        text = query.text
        if query.allowed_domains:
            # Most engines SearXNG asks (Google, Bing, DuckDuckGo, Brave, ...) understand site:; the
            # tool filters the results by domain anyway.
            sites = " OR ".join(f"site:{d}" for d in query.allowed_domains)
            text = f"{text} ({sites})" if len(query.allowed_domains) > 1 else f"{text} {sites}"
        params = {"q": text, "format": "json"}
        language = settings.language
        if language and query.country and language.isalpha():
            language = f"{language}-{query.country.upper()}"
        if language:
            params["language"] = language
        if settings.categories:
            params["categories"] = ",".join(settings.categories)
        if settings.engines:
            params["engines"] = ",".join(settings.engines)
        if settings.time_range:
            params["time_range"] = settings.time_range
        if settings.safesearch is not None:
            params["safesearch"] = str(settings.safesearch)
        return params

    async def search(self, http: aiohttp.ClientSession, query: SearchQuery) -> list[SearchResult]:
        data = await self.get_json(http, f"{self.url}/search", self.params(query))
        rows = data.get("results") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise SearchError(f"searxng at {self.shown_url} answered JSON without a results list")
        out = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            url, title, content = row.get("url"), row.get("title"), row.get("content")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                continue
            out.append(
                SearchResult(
                    url=url,
                    title=title if isinstance(title, str) else "",
                    snippet=content if isinstance(content, str) else "",
                )
            )
        return out

    def status_hint(self, status: int) -> str:
        if status == 403:
            return " (is the json format enabled? add json to search.formats in its settings.yml)"
        if status == 429:
            return " (its limiter refused the gateway: turn server.limiter off or allow the gateway's address)"
        return ""
