"""``[tools.web_search]``: which search backend the tool asks, and how much of its answer the model reads."""

from __future__ import annotations

from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from modelmux.plugin import ToolSettings


class WebSearchSettings(ToolSettings):
    """The ``web_search`` tool: the search backend asked when the model searches (docs/guides/web-search.md)."""

    backend: str = Field("searxng", description="the search backend: searxng (a self-hosted SearXNG, its JSON API)")
    url: str = Field(
        description="the backend's base URL, e.g. http://127.0.0.1:8888 for SearXNG (the tool calls URL/search)",
    )
    api_key: SecretStr = Field(
        SecretStr(""),
        description="sent as Authorization: Bearer KEY (or raw in api_key_header); empty: none (SearXNG needs none)",
    )
    api_key_header: str | None = Field(
        None, description='send the key raw in this header instead of "Authorization: Bearer KEY"'
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="static headers added to every backend call (e.g. a reverse proxy's auth)"
    )
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="total time for one backend call")
    max_results: int = Field(8, ge=1, le=50, description="results the model reads per search, at most")
    result_tokens: int = Field(
        2000,
        ge=100,
        le=100_000,
        description="the model reads at most this many tokens of results per search (about 4 characters a token) "
        "at search_context_size medium; low halves it, high doubles it",
    )
    language: str | None = Field(
        None,
        description='SearXNG language, e.g. "en" or "en-US" (unset: the instance default); a bare code gets the '
        "client's user_location country added (en -> en-US)",
    )
    categories: list[str] = Field(
        default_factory=list, description='SearXNG categories to search (empty: the instance default, "general")'
    )
    engines: list[str] = Field(default_factory=list, description="SearXNG engines to use (empty: the instance default)")
    time_range: Literal["day", "week", "month", "year"] | None = Field(
        None, description="only results from this period, for engines that support it (SearXNG time_range)"
    )
    safesearch: Literal[0, 1, 2] | None = Field(
        None, description="SearXNG safe search: 0 off, 1 moderate, 2 strict (unset: the instance default)"
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from modelmux_tool_web_search.backends import BACKENDS  # the backends import this module

        if value not in BACKENDS:
            raise ValueError(f"unknown search backend {value!r}; this package has: {', '.join(sorted(BACKENDS))}")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {value!r}), e.g. http://127.0.0.1:8888")
        return value.rstrip("/")

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").replace("_", "").isalpha():
            raise ValueError(f'a language code such as "en" or "en-US" (got {value!r})')
        return value

    @model_validator(mode="after")
    def _one_authorization(self) -> Self:
        has_user = urlsplit(self.url).username is not None
        bearer = bool(self.api_key.get_secret_value()) and not self.api_key_header
        in_headers = any(name.lower() == "authorization" for name in self.headers)
        if sum((has_user, bearer, in_headers)) > 1:
            raise ValueError(
                "two Authorization headers: user:password@ in url, api_key (without api_key_header) and "
                "headers.Authorization each set one; keep one"
            )
        return self
