"""A state/cache backend's own options are validated when the configuration loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmux.config import ConfigError, load_config
from modelmux.plugins import load_plugins


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "modelmux.toml"
    path.write_text(text)
    load_config(path, load_plugins().registry)


def test_bad_backend_options_are_config_errors_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, '[state]\nbackend = "memory"\nmax_items = 0\n[cache]\nbackend = "disk"\nsize_limit = 5\n')
    text = str(err.value)
    assert "state.max_items" in text and "greater than 0" in text
    assert "cache.size_limit: unknown setting" in text


def test_good_backend_options_load(tmp_path: Path) -> None:
    _load(tmp_path, f'[state]\nbackend = "disk"\npath = "{tmp_path}"\n[cache]\nbackend = "memory"\nmax_items = 5\n')
