"""Hook implementation: the ``file_search`` tool, turned on by ``[tools.file_search]``.

Discovery imports this module in every ``modelmux`` process, so it stays light: numpy, sqlite3
and redis-py are imported when the tool starts.
"""

from __future__ import annotations

from modelmux.plugin import RegisterTool, hookimpl
from modelmux_tool_file_search.settings import FileSearchSettings
from modelmux_tool_file_search.tool import FileSearch


@hookimpl
def register_tools(register: RegisterTool) -> None:
    register(FileSearch, FileSearchSettings)
