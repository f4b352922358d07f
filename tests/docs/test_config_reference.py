"""docs/reference/configuration.md is generated from the settings models; it must match them."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmux import config_reference
from modelmux.config import load_config
from modelmux.plugins import Plugins, load_plugins

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins()


def test_the_committed_reference_matches_the_settings_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELMUX_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("MODELMUX_DISABLE_PLUGINS", raising=False)
    assert PAGE.read_text() == config_reference.generate(), f"{PAGE} is out of date: run make docs"


def test_every_key_has_a_description(plugins: Plugins) -> None:
    missing = config_reference.missing_descriptions(plugins)
    assert not missing, f"settings fields without description=: {missing}"


def test_the_page_covers_every_registered_type(plugins: Plugins) -> None:
    page = PAGE.read_text()
    for name in plugins.registry.providers:
        reg = plugins.registry.providers[name]
        assert f'### `type = "{reg.name}"`' in page
    for reg in plugins.registry.tools.values():
        assert f"### `[tools.{reg.name}]`" in page
    for section, table in (("state", plugins.registry.state_stores), ("cache", plugins.registry.caches)):
        for name in table:
            assert f'### `[{section}]` with `backend = "{name}"`' in page


def test_the_environment_variables_listed_are_the_ones_the_loader_reads(plugins: Plugins, tmp_path: Path) -> None:
    """Every host key and common provider key, set through its listed variable to its listed default, loads."""
    environ = {
        "MODELMUX_PROVIDERS__P__TYPE": "echo",
        "MODELMUX_MODELS__M__PROVIDER": "p",
        "MODELMUX_MODELS__M__MODEL": "x",
    }
    expected: dict[str, str] = {}
    for section in config_reference.sections(plugins):
        for row in section.rows:
            if "(in the list" in row.env or row.default in ("", '""', "required", "unset") or row.key.endswith(".type"):
                continue
            if section.heading.startswith("### `[") and "backend" in section.heading:
                continue  # backend options: checked by their backend, not by the host's schema
            if row.key.startswith("providers.") and "`type = " in section.heading:
                continue  # a provider type's own keys need that type
            if section.heading.startswith("### `[tools."):
                continue  # a tool's keys turn the tool on: checked by its plugin's tests
            env = row.env.replace("<NAME>", "P" if row.key.startswith("providers.") else "M").replace("<LABEL>", "L")
            if "<" in env or "__KEYS" in env:
                continue
            environ[env] = row.default.strip('"')
            expected[row.key] = row.default
    assert len(expected) > 20
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    # Unknown keys are errors in these tables: a variable naming a key that does not exist would fail here.
    config = load_config(empty, plugins.registry, environ=environ)
    assert config.settings.server.port == 3000 and config.providers["p"].timeout_seconds == 120.0
