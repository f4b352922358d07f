"""Configuration and command line for plugin tests: loaded and run as a user's would be."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from modelmux.config import ConfigError

if TYPE_CHECKING:
    from modelmux.config import Config


def load_config(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    """Read and validate ``path`` as ``modelmux serve`` would, with every installed plugin.

    ``environ`` replaces ``os.environ`` for ``MODELMUX_*`` overrides and ``${VAR}`` expansion.
    Raises ``ConfigError`` (``str()`` lists every problem). The result's ``providers[NAME]`` is
    the provider's validated settings model.
    """
    from modelmux.config import load_config as load
    from modelmux.plugins import load_plugins

    return load(path, load_plugins().registry, environ)


def cli() -> click.Group:
    """The ``modelmux`` command line, for ``click.testing.CliRunner().invoke(cli(), [...])``."""
    from modelmux.cli import main

    return main


__all__ = ["ConfigError", "cli", "load_config"]
