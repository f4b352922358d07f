"""Plugin discovery: stevedore loads the ``modelmux`` entry points one by one,
pluggy holds the hook contract. A plugin that fails to import is recorded and
skipped; the rest still load.

``MODELMUX_LOAD_PLUGINS=a,b`` loads only those entry points;
``MODELMUX_DISABLE_PLUGINS=a,b`` skips those. Built-in plugins (echo, memory,
disk) always load and register through the same hooks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
from loguru import logger
from pydantic import BaseModel
from stevedore import NamedExtensionManager

from modelmux import hookspecs
from modelmux.registry import Preset, PresetRender, Registration, Registry

ENTRY_POINT_GROUP = "modelmux"
BUILTIN_MODULES = (
    "modelmux.default_plugins.echo",
    "modelmux.default_plugins.memory",
    "modelmux.default_plugins.disk",
)


@dataclass
class PluginInfo:
    """One row of ``modelmux plugins``."""

    name: str
    distribution: str
    version: str
    builtin: bool = False
    error: str | None = None
    registers: list[str] = field(default_factory=list)


@dataclass
class Plugins:
    manager: pluggy.PluginManager
    registry: Registry
    infos: list[PluginInfo]

    @property
    def errors(self) -> dict[str, str]:
        return {i.name: i.error for i in self.infos if i.error}

    def call(self, hook_name: str, **kwargs: Any) -> None:
        """Call a hook on every plugin; one that raises is logged and listed with its error."""
        call_hook(self.manager, hook_name, lambda _plugin: kwargs, lambda p, msg: _failed(self.infos, p, msg))


def _failed(infos: list[PluginInfo], plugin: str, msg: str) -> None:
    logger.error("plugin {}: {}", plugin, msg)
    for info in infos:
        if info.name == plugin:
            info.error = msg


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _distributions() -> dict[str, tuple[str, str]]:
    # stevedore's cache drops the distribution, so keep our own name -> (dist, version) table.
    table: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                table[ep.name] = (dist.metadata["Name"], dist.version)
    return table


def new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("modelmux")
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(extra: Iterable[ModuleType | object] = ()) -> Plugins:
    """Discover, load and call every plugin's hooks. ``extra`` registers objects directly (tests)."""
    import importlib

    pm = new_manager()
    infos: list[PluginInfo] = []
    host_version = metadata.version("modelmux") if _installed("modelmux") else "0.0.0"

    for mod_name in BUILTIN_MODULES:
        mod = importlib.import_module(mod_name)
        short = mod_name.rsplit(".", 1)[1]
        pm.register(mod, name=f"builtin:{short}")
        infos.append(PluginInfo(short, "modelmux", host_version, builtin=True))

    only = _env_list("MODELMUX_LOAD_PLUGINS")
    disabled = _env_list("MODELMUX_DISABLE_PLUGINS") or set()
    dists = _distributions()
    failures: dict[str, str] = {}

    def on_failure(_mgr: Any, ep: Any, exc: BaseException) -> None:
        failures[ep.name] = f"{type(exc).__name__}: {exc}"
        logger.error("plugin {} failed to load and was skipped: {}", ep.name, failures[ep.name])

    # NamedExtensionManager imports only the wanted names: a disabled plugin is never imported.
    names = sorted(n for n in dists if (only is None or n in only) and n not in disabled)
    loaded: dict[str, object] = {}
    if names:
        # stevedore caches a group's entry points per process; a new load must see new installs.
        NamedExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
        mgr = NamedExtensionManager(
            ENTRY_POINT_GROUP,
            names=names,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
            verify_requirements=False,
        )
        loaded = {ext.name: ext.plugin for ext in mgr.extensions}
    for name in sorted(set(names) | set(failures)):
        dist, ver = dists.get(name, ("?", "?"))
        info = PluginInfo(name, dist, ver, error=failures.get(name))
        plugin = loaded.get(name)
        if plugin is not None and info.error is None:
            try:
                pm.register(plugin, name=name)
            except Exception as exc:  # e.g. a hook with a misspelt name or bad signature
                info.error = f"{type(exc).__name__}: {exc}"
                logger.error("plugin {} could not be registered: {}", name, info.error)
        infos.append(info)
    for obj in extra:  # in-process plugins (tests): reported like installed ones
        name = getattr(obj, "__name__", None) or type(obj).__name__
        name = pm.register(obj, name=None if pm.has_plugin(name) else name) or name
        infos.append(PluginInfo(name, "(in-process)", host_version))

    registry = _collect(pm, infos)
    return Plugins(pm, registry, infos)


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def _plugin_name(pm: pluggy.PluginManager, impl: pluggy.HookImpl) -> str:
    name = pm.get_name(impl.plugin) or "?"
    return name.removeprefix("builtin:")


def call_hook(
    pm: pluggy.PluginManager,
    hook_name: str,
    make_kwargs: Callable[[str], dict[str, Any]],
    on_error: Callable[[str, str], None],
) -> None:
    """Call each plugin's implementation of ``hook_name`` through pluggy, one plugin at a time.

    pluggy passes an implementation only the arguments it names (so a hook can gain an
    argument without breaking older plugins) and runs wrappers; calling one plugin at a time
    keeps a plugin whose hook raises from stopping the others: ``on_error(plugin, message)``
    reports it. ``make_kwargs(plugin)`` gives the call's arguments (a ``register`` that knows
    which plugin registers).
    """
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    # A wrapper stays in every call, so it wraps each plugin's implementation as pluggy would.
    wrappers = {id(i.plugin) for i in impls if i.hookwrapper or i.wrapper}
    plugins = pm.get_plugins()
    for impl in impls:
        if impl.hookwrapper or impl.wrapper:
            continue
        plugin = _plugin_name(pm, impl)
        others = [p for p in plugins if p is not impl.plugin and id(p) not in wrappers]
        try:
            pm.subset_hook_caller(hook_name, remove_plugins=others)(**make_kwargs(plugin))
        except Exception as exc:
            on_error(plugin, f"{hook_name} raised {type(exc).__name__}: {exc}")


def _collect(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> Registry:
    registry = Registry()
    by_name = {i.name: i for i in infos}

    def call(hook_name: str, make_register: Any) -> None:
        call_hook(pm, hook_name, lambda plugin: {"register": make_register(plugin)}, lambda p, m: _failed(infos, p, m))

    def note(plugin: str, what: str) -> None:
        if plugin in by_name:
            by_name[plugin].registers.append(what)

    def reg_factory(table: dict[str, Registration], kind: str) -> Any:
        def make(plugin: str) -> Any:
            def register(
                name: str,
                factory: Any,
                settings_model: type[BaseModel],
                *,
                aliases: Iterable[str] = (),
            ) -> None:
                reg = Registration(name, factory, settings_model, plugin, tuple(aliases))
                registry.add(table, reg)
                alias_txt = f" (alias {', '.join(reg.aliases)})" if reg.aliases else ""
                note(plugin, f"{kind} {name}{alias_txt}")

            return register

        return make

    def make_tool(plugin: str) -> Any:
        def register(
            tool: Any,
            settings_model: type[BaseModel],
            *,
            type: str | None = None,
            aliases: Iterable[str] | None = None,
        ) -> None:
            name = type or getattr(tool, "type", None)
            if not isinstance(name, str) or not name:
                raise ValueError(f"register_tools: {tool!r} has no type; pass type= or set the class attribute")
            names = tuple(aliases if aliases is not None else getattr(tool, "aliases", ()))
            registry.add(registry.tools, Registration(name, tool, settings_model, plugin, names))
            note(plugin, f"tool {name}" + (f" (alias {', '.join(names)})" if names else ""))

        return register

    def make_preset(plugin: str) -> Any:
        def register(name: str, description: str, render: PresetRender) -> None:
            registry.presets[name] = Preset(name, description, render, plugin)
            note(plugin, f"preset {name}")

        return register

    call("register_providers", reg_factory(registry.providers, "provider"))
    call("register_state_stores", reg_factory(registry.state_stores, "state store"))
    call("register_caches", reg_factory(registry.caches, "cache"))
    call("register_tools", make_tool)
    call("register_config_presets", make_preset)
    return registry
