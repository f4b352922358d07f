"""Hook implementation: the ``web_search`` tool (and its aliases), turned on by ``[tools.web_search]``."""

from __future__ import annotations

from modelmux.plugin import RegisterTool, hookimpl
from modelmux_tool_web_search.settings import WebSearchSettings
from modelmux_tool_web_search.tool import WebSearch


@hookimpl
def register_tools(register: RegisterTool) -> None:
    register(WebSearch, WebSearchSettings)
