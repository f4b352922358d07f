"""The OpenAI ``web_search`` tool for ModelMux, run by the gateway against a search backend (SearXNG)."""

from modelmux_tool_web_search.backends import BACKENDS, SearchBackend, SearchError, SearchQuery, SearchResult
from modelmux_tool_web_search.settings import WebSearchSettings
from modelmux_tool_web_search.tool import WebSearch

__all__ = [
    "BACKENDS",
    "SearchBackend",
    "SearchError",
    "SearchQuery",
    "SearchResult",
    "WebSearch",
    "WebSearchSettings",
]
