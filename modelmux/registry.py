"""What plugins registered: provider types, state stores, caches, tools and presets, by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from modelmux.provider import Host, Provider, ProviderSettings
    from modelmux.stores import Cache, StateStore
    from modelmux.tools import Tool, ToolSettings

ProviderFactory = Callable[[str, "ProviderSettings", "Host"], "Provider"]
StateStoreFactory = Callable[[Any], "StateStore"]
CacheFactory = Callable[[Any], "Cache"]
PresetRender = Callable[[dict[str, Any]], str]

# The settings model a plugin registers is the type its factory receives: the host validates the
# table with that model before calling the factory, so a factory needs no isinstance check and a
# provider class whose __init__ takes (name, settings, host) is a factory as it is.
S = TypeVar("S", bound="ProviderSettings")
T = TypeVar("T", bound="ToolSettings")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Registration:
    name: str
    factory: Callable[..., Any]
    settings_model: type[BaseModel]
    plugin: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    render: PresetRender
    plugin: str


class RegisterProvider(Protocol):
    """``register(name, factory, settings_model, *, aliases=())``: e.g. ``register("shout", Shout, ShoutSettings)``."""

    def __call__(
        self,
        name: str,
        factory: Callable[[str, S, Host], Provider],
        settings_model: type[S],
        *,
        aliases: Iterable[str] = (),
    ) -> None: ...


class RegisterStateStore(Protocol):
    """``register(name, factory, settings_model)``: e.g. ``register("sqlite", SqliteStore, SqliteSettings)``."""

    def __call__(self, name: str, factory: Callable[[M], StateStore], settings_model: type[M]) -> None: ...


class RegisterCache(Protocol):
    """``register(name, factory, settings_model)``: e.g. ``register("files", FileCache, FileCacheSettings)``."""

    def __call__(self, name: str, factory: Callable[[M], Cache], settings_model: type[M]) -> None: ...


class RegisterTool(Protocol):
    """``register(tool, settings_model, *, type=None, aliases=None)``: e.g. ``register(WebSearch, WebSearchSettings)``.

    ``tool`` is a ``Tool`` subclass (``type`` and ``aliases`` default to its class attributes) or a
    factory ``(settings, host) -> Tool``, which needs ``type``."""

    def __call__(
        self,
        tool: type[Tool] | Callable[[T, Host], Tool],
        settings_model: type[T],
        *,
        type: str | None = None,
        aliases: Iterable[str] | None = None,
    ) -> None: ...


class RegisterPreset(Protocol):
    def __call__(self, name: str, description: str, render: PresetRender) -> None: ...


@dataclass
class Registry:
    providers: dict[str, Registration] = field(default_factory=dict)
    state_stores: dict[str, Registration] = field(default_factory=dict)
    caches: dict[str, Registration] = field(default_factory=dict)
    #: Tool type and each alias -> its registration (``Registration.name`` is the tool's type).
    tools: dict[str, Registration] = field(default_factory=dict)
    presets: dict[str, Preset] = field(default_factory=dict)

    def provider_types(self) -> list[str]:
        return sorted(self.providers)

    def add(self, table: dict[str, Registration], reg: Registration) -> None:
        for key in (reg.name, *reg.aliases):
            table[key] = reg
