"""``[tools.web_search]`` in a real configuration file: the plugin is found through its entry
point, its table validated by its settings, and a mistake named by its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from modelmux_tool_web_search import WebSearchSettings

from modelmux.testing import ConfigError, LoopbackServer, cli, free_port, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modelmux.toml"
    path.write_text(text)
    return path


def test_the_table_turns_the_tool_on_with_its_settings(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, '[tools.web_search]\nurl = "http://127.0.0.1:8888/"\nmax_results = 3\n'),
        environ={"MODELMUX_TOOLS__WEB_SEARCH__RESULT_TOKENS": "500"},
    )
    settings = config.tools["web_search"]
    assert isinstance(settings, WebSearchSettings)
    assert (settings.url, settings.max_results, settings.result_tokens) == ("http://127.0.0.1:8888", 3, 500)


def test_an_alias_table_configures_the_same_tool(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[tools.web_search_preview]\nurl = "http://127.0.0.1:8888"\n'))
    assert list(config.tools) == ["web_search"]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("", "tools.web_search.url"),
        ('url = "searx.local"', "tools.web_search.url: Value error, must start with http:// or https://"),
        ('url = "http://x"\nbackend = "bing"', "tools.web_search.backend: Value error, unknown search backend 'bing'"),
        ('url = "http://x"\nmax_result = 3', "tools.web_search.max_result"),
    ],
)
def test_a_mistake_is_named_by_its_key(tmp_path: Path, table: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"[tools.web_search]\n{table}\n"))
    assert expected in str(caught.value)


def test_doctor_runs_a_test_search(tmp_path: Path, searxng: LoopbackServer, queries: list[dict[str, Any]]) -> None:
    path = write(tmp_path, f'[tools.web_search]\nurl = "{searxng.url}"\n')
    result = CliRunner().invoke(cli(), ["doctor", "--config", str(path)], env={"COLUMNS": "250"})
    row = next(line for line in result.output.splitlines() if "search backend answers" in line)
    assert "tools.web_search" in row and "ok" in row, result.output
    assert f"searxng at {searxng.url} answered a test search with 4 results" in result.output
    assert [q["params"] for q in queries] == [{"q": "modelmux", "format": "json"}]


def test_doctor_fails_when_the_backend_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    path = write(tmp_path, f'[tools.web_search]\nurl = "http://127.0.0.1:{port}"\n')
    result = CliRunner().invoke(cli(), ["doctor", "--config", str(path)], env={"COLUMNS": "250"})
    assert result.exit_code != 0
    assert f"cannot reach searxng at http://127.0.0.1:{port}" in result.output
    assert "FAIL" in next(line for line in result.output.splitlines() if "search backend answers" in line)
    assert f"tools.web_search.url (now http://127.0.0.1:{port})" in result.output
