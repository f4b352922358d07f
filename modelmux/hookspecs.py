"""The hooks a ModelMux plugin can implement. ``docs/plugins.md`` documents each one.

Every hook receives a ``register`` callback; a plugin calls it once per thing it
adds, as in simonw/llm. Hook implementations may take fewer arguments than the
spec (pluggy), so specs can grow without breaking plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from modelmux.registry import (
        RegisterCache,
        RegisterPreset,
        RegisterProvider,
        RegisterStateStore,
        RegisterTool,
    )

hookspec = pluggy.HookspecMarker("modelmux")


@hookspec
def register_providers(register: RegisterProvider) -> None:
    """Add provider types.

    :param register: call ``register(type_name, factory, settings_model, *, aliases=())``.
        ``factory(name, settings, host) -> Provider`` builds one configured provider;
        ``settings_model`` is a subclass of ``modelmux.provider.ProviderSettings``
        validating its ``[providers.NAME]`` table.
    """


@hookspec
def register_state_stores(register: RegisterStateStore) -> None:
    """Add state-store backends (``[state] backend = NAME``).

    :param register: call ``register(name, factory, settings_model)``;
        ``factory(settings) -> StateStore``.
    """


@hookspec
def register_caches(register: RegisterCache) -> None:
    """Add response-cache backends (``[cache] backend = NAME``).

    :param register: call ``register(name, factory, settings_model)``;
        ``factory(settings) -> Cache``.
    """


@hookspec
def register_tools(register: RegisterTool) -> None:
    """Add built-in tools the gateway runs itself (``[tools.TYPE]`` turns one on).

    :param register: call ``register(tool, settings_model, *, type=None, aliases=None)``;
        ``tool`` is a ``modelmux.tools.Tool`` subclass (its ``type`` and ``aliases`` are read
        from the class) or a factory ``(settings, host) -> Tool`` given with ``type``;
        ``settings_model`` subclasses ``ToolSettings`` and validates the ``[tools.TYPE]`` table.
    """


@hookspec
def register_config_presets(register: RegisterPreset) -> None:
    """Add ``modelmux config init --preset NAME`` templates.

    :param register: call ``register(name, description, render)``; ``render(detected)``
        returns TOML text, ``detected`` is a dict the preset may fill from the environment.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``modelmux`` command line.

    :param cli: the top-level click group; call ``cli.add_command(...)``.
    """
