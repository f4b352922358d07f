"""The configuration reference, generated from the settings models so it cannot drift.

Walks the host's settings (``modelmux.config.Settings``) and the settings model of every
provider type, state store and cache the installed plugins registered (found through the
plugin registry, never imported by name), and writes one Markdown page: every key with its
type, default, environment variable and description.

    python -m modelmux.config_reference            # writes docs/reference/configuration.md
    python -m modelmux.config_reference --check    # exit 1 when the committed page is stale
    make docs                                      # the same as the first line
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from modelmux.config import ENV_PREFIX, ModelSettings, Settings
from modelmux.plugins import Plugins, load_plugins
from modelmux.provider import ProviderSettings
from modelmux.registry import Registration
from modelmux.stores import StoreSettings

DEFAULT_OUTPUT = Path("docs/reference/configuration.md")

#: Host tables in the order of the page; [providers] and [models] follow.
_HOST_TABLES = ("server", "state", "cache", "router", "tracing", "tools")
#: The host sets these on every store's settings itself ([state]/[cache] ttl_seconds, the namespace).
_HOST_SET_STORE_FIELDS = frozenset(StoreSettings.model_fields)
#: The placeholder for the user-chosen names of a table of tables; <NAME> unless listed.
_PLACEHOLDERS = {"keys": "<LABEL>"}
#: A ``<`` that Markdown would read as the start of an HTML tag.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    env: str
    description: str


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    inner = _unwrap_optional(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def type_name(annotation: Any) -> str:
    """A TOML-minded name for a field's type: string, integer, list of string, "a" or "b", ..."""
    annotation = _unwrap_optional(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in get_args(annotation) if a is not type(None))
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return "list of tables" if _model_of(item) else f"list of {type_name(item)}"
    if origin is dict:
        args = get_args(annotation)
        value = args[1] if len(args) == 2 else Any
        return "table of tables" if _model_of(value) else f"table of {type_name(value)}"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", SecretStr: "string (secret)"}
    if annotation in names:
        return names[annotation]
    if _model_of(annotation):
        return "table"
    return "any" if annotation is Any else getattr(annotation, "__name__", str(annotation))


def _bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None and isinstance(item, annotated_types.BaseMetadata):
                parts.append(f"{sign} {value}")
        if isinstance(item, annotated_types.MinLen) and item.min_length:
            parts.append("not empty" if item.min_length == 1 else f"at least {item.min_length} long")
    return ", ".join(parts)


def _toml(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return "" if isinstance(value, BaseModel) else _toml(value)
    return _toml(field.default if field.default is not PydanticUndefined else None)


def env_name(parts: list[str]) -> str:
    """``["providers", "<NAME>", "base_url"]`` -> ``MODELMUX_PROVIDERS__<NAME>__BASE_URL``."""
    return ENV_PREFIX + "__".join(p if p.startswith("<") else p.upper() for p in parts)


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, and ``<`` outside code spans kept from turning into HTML."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else _TAG_START.sub("&lt;", p) for i, p in enumerate(parts))


def rows(
    model: type[BaseModel],
    prefix: list[str],
    *,
    skip: frozenset[str] = frozenset(),
    in_list: bool = False,
) -> Iterator[Row]:
    """One row per key of ``model`` under ``prefix``, nested tables flattened in place.

    ``prefix`` holds the dotted path; placeholders such as ``<NAME>`` stand for user-chosen
    names. Keys inside a list of tables have no variable of their own (the list is one JSON value).
    """
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        path = [*prefix, name]
        annotation = field.annotation
        origin = get_origin(_unwrap_optional(annotation))
        nested = _model_of(annotation)
        if nested is not None:  # a sub-table: its keys are the rows
            yield from rows(nested, path, in_list=in_list)
            continue
        kind = type_name(annotation)
        bounds = _bounds(field)
        yield Row(
            key=".".join(path),
            type=f"{kind}, {bounds}" if bounds else kind,
            default=default_text(field),
            env="(in the list's JSON)" if in_list else env_name(path),
            description=field.description or "",
        )
        if origin is dict and (value := _model_of(get_args(_unwrap_optional(annotation))[1])) is not None:
            yield from rows(value, [*path, _PLACEHOLDERS.get(name, "<NAME>")], in_list=in_list)
        elif origin is list and (item := _model_of(get_args(_unwrap_optional(annotation))[0])) is not None:
            yield from rows(item, [*path[:-1], f"{name}[]"], in_list=True)


def _table(items: list[Row]) -> list[str]:
    out = ["| key | type | default | environment variable | description |", "|---|---|---|---|---|"]
    for r in items:
        out.append(
            f"| `{r.key}` | {_cell(r.type)} | {f'`{r.default}`' if r.default else ''} | "
            f"{f'`{r.env}`' if r.env.startswith(ENV_PREFIX) else r.env} | {_cell(r.description)} |"
        )
    return out


def _doc(model: type[BaseModel]) -> str:
    text = (model.__doc__ or "").strip()
    return " ".join(text.replace("``", "`").split())


@dataclass
class Section:
    heading: str
    intro: str
    rows: list[Row]


def _origin(reg: Registration, plugins: Plugins) -> str:
    info = next((i for i in plugins.infos if i.name == reg.plugin), None)
    if info is None or info.builtin:
        return "Built into `modelmux`."
    return f"From the plugin package `{info.distribution}`."


def _unique(table: dict[str, Registration]) -> list[Registration]:
    """One registration per name (aliases point at the same one)."""
    seen: dict[str, Registration] = {}
    for reg in table.values():
        seen.setdefault(reg.name, reg)
    return [seen[name] for name in sorted(seen)]


def _inherited(model: type[BaseModel]) -> frozenset[str]:
    """Fields a provider type inherits unchanged from ProviderSettings: documented once, for all."""
    base = ProviderSettings.model_fields
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if name in base and (name == "type" or field.default == base[name].default)
    )


_TITLES = {
    "server": "`[server]`: listening, client keys, limits, logs",
    "state": "`[state]`: stored responses and shared counters",
    "cache": "`[cache]`: the exact-match response cache",
    "router": "`[router]`: model resolution and resilience",
    "tracing": "`[tracing]`: OpenTelemetry",
    "tools": "`[tools]`: built-in tools run by the gateway",
}


def sections(plugins: Plugins) -> list[Section]:
    """The page's sections in order: host tables, store backends, provider types, models."""
    registry = plugins.registry
    out: list[Section] = []
    for name in _HOST_TABLES:
        model = Settings.model_fields[name].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        out.append(Section(f"## {_TITLES[name]}", _doc(model), list(rows(model, [name]))))
        if name == "tools":
            for reg in _unique(registry.tools):
                aliases = f" (alias {', '.join(f'`{a}`' for a in reg.aliases)})" if reg.aliases else ""
                out.append(
                    Section(
                        f"### `[tools.{reg.name}]`{aliases}",
                        f"{_origin(reg, plugins)} {_doc(reg.settings_model)}".rstrip(),
                        list(rows(reg.settings_model, ["tools", reg.name])),
                    )
                )
        if name not in ("state", "cache"):
            continue
        table = registry.state_stores if name == "state" else registry.caches
        for reg in _unique(table):
            out.append(
                Section(
                    f'### `[{name}]` with `backend = "{reg.name}"`',
                    f"{_origin(reg, plugins)} {_doc(reg.settings_model)}".rstrip(),
                    list(rows(reg.settings_model, [name], skip=_HOST_SET_STORE_FIELDS)),
                )
            )
    out.append(
        Section(
            "## `[providers.<NAME>]`: upstreams",
            f"{_doc(ProviderSettings)} `type` picks the provider type; every type takes the keys below, "
            "and its own keys listed under it.",
            list(rows(ProviderSettings, ["providers", "<NAME>"])),
        )
    )
    for reg in _unique(registry.providers):
        aliases = f" (alias {', '.join(f'`{a}`' for a in reg.aliases)})" if reg.aliases else ""
        out.append(
            Section(
                f'### `type = "{reg.name}"`{aliases}',
                f"{_origin(reg, plugins)} {_doc(reg.settings_model)}".rstrip(),
                list(rows(reg.settings_model, ["providers", "<NAME>"], skip=_inherited(reg.settings_model))),
            )
        )
    out.append(
        Section(
            "## `[models.<NAME>]`: the model names clients use",
            _doc(ModelSettings),
            list(rows(ModelSettings, ["models", "<NAME>"])),
        )
    )
    return out


def missing_descriptions(plugins: Plugins) -> list[str]:
    """Keys of the page whose settings field has no ``description``."""
    return [r.key for s in sections(plugins) for r in s.rows if not r.description]


_PREAMBLE = """\
# Configuration reference

<!-- Generated by `python -m modelmux.config_reference` (`make docs`) from the settings models
     of the host and of every installed plugin. Do not edit: change the model's `description=`. -->

Every key ModelMux reads, with its type, default and environment variable. How the file is
found, `${{VAR}}` expansion, and what errors look like: [configuration.md](../configuration.md).

- **key**: its place in the TOML file; `<NAME>` is a name you choose (`[providers.claude]`).
- **environment variable**: `MODELMUX_` + the key's parts upper-cased, joined by `__`; it
  overrides the file. Lists and tables take JSON: `MODELMUX_SERVER__API_KEYS='["k1"]'`.
- **default**: `required` keys have none; `unset` means absent (the description says what
  that does).

Written for the plugins installed at the time:
{plugins}.
`modelmux plugins` lists yours; a third-party plugin documents its own keys."""


def render(plugins: Plugins) -> str:
    """The whole page."""
    names = sorted(i.distribution for i in plugins.infos if not i.builtin and not i.error)
    out = [_PREAMBLE.format(plugins=", ".join(f"`{n}`" for n in names) or "none")]
    for section in sections(plugins):
        out += ["", section.heading]
        if section.intro:
            out += ["", section.intro]
        out += ["", *_table(section.rows)] if section.rows else ["", "No keys of its own."]
    return "\n".join(out) + "\n"


def generate() -> str:
    """The page for the plugins installed in this environment, whatever MODELMUX_*_PLUGINS say."""
    saved = {k: os.environ.pop(k) for k in ("MODELMUX_LOAD_PLUGINS", "MODELMUX_DISABLE_PLUGINS") if k in os.environ}
    try:
        return render(load_plugins())
    finally:
        os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelmux.config_reference", description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when it differs")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.output.read_text() if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is out of date: run make docs", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
