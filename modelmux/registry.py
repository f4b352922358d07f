"""What plugins registered: provider types, state stores, caches and presets, by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from modelmux.provider import Host, Provider, ProviderSettings
    from modelmux.stores import Cache, StateStore

ProviderFactory = Callable[[str, "ProviderSettings", "Host"], "Provider"]
StateStoreFactory = Callable[[Any], "StateStore"]
CacheFactory = Callable[[Any], "Cache"]
PresetRender = Callable[[dict[str, Any]], str]


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
    def __call__(
        self,
        name: str,
        factory: ProviderFactory,
        settings_model: type[ProviderSettings],
        *,
        aliases: Iterable[str] = (),
    ) -> None: ...


class RegisterStateStore(Protocol):
    def __call__(self, name: str, factory: StateStoreFactory, settings_model: type[BaseModel]) -> None: ...


class RegisterCache(Protocol):
    def __call__(self, name: str, factory: CacheFactory, settings_model: type[BaseModel]) -> None: ...


class RegisterPreset(Protocol):
    def __call__(self, name: str, description: str, render: PresetRender) -> None: ...


@dataclass
class Registry:
    providers: dict[str, Registration] = field(default_factory=dict)
    state_stores: dict[str, Registration] = field(default_factory=dict)
    caches: dict[str, Registration] = field(default_factory=dict)
    presets: dict[str, Preset] = field(default_factory=dict)

    def provider_types(self) -> list[str]:
        return sorted(self.providers)

    def add(self, table: dict[str, Registration], reg: Registration) -> None:
        for key in (reg.name, *reg.aliases):
            table[key] = reg
