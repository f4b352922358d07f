"""Configuration: TOML file + environment, ``${VAR}`` expansion, pydantic validation.

Search order (first hit wins): ``--config PATH``, ``$MODELMUX_CONFIG_FILE``,
``./modelmux.toml``, ``~/.config/modelmux/config.toml``, ``/etc/modelmux/config.toml``.
No file at all is valid: the echo provider is served alone.

``MODELMUX_<SECTION>__<KEY>`` environment variables override the file (``__``
between levels). Each provider table is validated by the settings model its
plugin registered. Every error names the key, the bad value and the fix.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    from modelmux.provider import ProviderSettings
    from modelmux.registry import Registry

ENV_PREFIX = "MODELMUX_"
SEARCH_PATHS = (
    Path("modelmux.toml"),
    Path("~/.config/modelmux/config.toml"),
    Path("/etc/modelmux/config.toml"),
)
SECRET_KEYS = re.compile(
    r"((^|_)(api_keys?|password|secret|token|secret_access_key)$)|^(authorization|api-key|x-api-key|cookie)$",
    re.IGNORECASE,
)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is ready to print, one problem per line."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else problems
        super().__init__("\n".join(self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitOverride(_Strict):
    """``[server.limits.keys.NAME]``: limits for one client API key (one of ``server.api_keys``)."""

    api_key: str
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)


class LimitSettings(_Strict):
    """``[server.limits]``: per client API key rate limits; unset means unlimited."""

    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    keys: dict[str, LimitOverride] = Field(default_factory=dict)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    api_keys: list[str] = Field(default_factory=list)
    log_level: Literal["trace", "debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["pretty", "json"] = "pretty"
    log_bodies: bool = False
    #: How long a /health/ready probe result of each provider is reused.
    ready_check_interval_seconds: float = Field(15.0, ge=0)
    max_request_bytes: int = Field(32 * 1024 * 1024, gt=0)
    url_fetch_allow: list[str] = Field(default_factory=list)
    #: On SIGTERM: how long in-flight requests and streams may still run before they are cut.
    shutdown_timeout_seconds: float = Field(30.0, ge=0)
    limits: LimitSettings = Field(default_factory=LimitSettings)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(base).expanduser() / "modelmux"


class StateSettings(BaseModel):
    """``[state]``: ``backend`` and ``ttl_seconds``; other keys are the backend's options."""

    model_config = ConfigDict(extra="allow")
    backend: str = "disk"
    ttl_seconds: int = Field(30 * 24 * 3600, gt=0)


class CacheSettings(BaseModel):
    """``[cache]``: the exact-match response cache (docs/caching.md); other keys are the backend's options."""

    model_config = ConfigDict(extra="allow")
    #: Cache every model's answers (a model's own ``cache`` setting overrides this).
    enabled: bool = False
    backend: str = "disk"
    ttl_seconds: float = Field(3600, gt=0)
    #: Answers larger than this are not stored.
    max_entry_bytes: int = Field(1024 * 1024, gt=0)


class TracingSettings(_Strict):
    """``[tracing]``: OpenTelemetry spans (needs ``pip install modelmux[otel]``)."""

    enabled: bool = False
    service_name: str = "modelmux"


class CircuitBreakerSettings(_Strict):
    """A deployment that fails ``failures`` times in a row is skipped for ``cooldown_seconds``,
    then one trial request decides whether it is back."""

    failures: int = Field(5, ge=1)
    cooldown_seconds: float = Field(30.0, gt=0)


class RouterSettings(_Strict):
    default_provider: str | None = None
    #: Overall budget of one client request until its answer starts (every attempt, backoff and
    #: fallback); no retry or fallback starts after it.
    deadline_seconds: float = Field(300.0, gt=0)
    circuit_breaker: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)


class DeploymentSettings(_Strict):
    """One place a model runs: a configured provider, its upstream model id, a balancing weight."""

    provider: str
    model: str
    weight: int = Field(1, ge=1, le=1000)


Strategy = Literal["weighted_round_robin", "least_inflight"]


class ModelSettings(_Strict):
    """``[models.NAME]``: either ``provider`` + ``model`` (one deployment) or ``deployments``."""

    provider: str = ""
    model: str = ""
    deployments: list[DeploymentSettings] = Field(default_factory=list)
    strategy: Strategy = "weighted_round_robin"
    fallbacks: list[str] = Field(default_factory=list)
    #: Responses API: a built-in tool (web_search, ...) this model's provider cannot run is a 400
    #: naming the tool, instead of being dropped (with a log line and x-modelmux-dropped-tools).
    strict_tools: bool = False
    #: Exact-match response cache for this model: true/false; unset follows ``[cache] enabled``.
    cache: bool | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ModelSettings:
        if self.deployments and (self.provider or self.model):
            raise ValueError("set either provider + model (one deployment) or deployments = [...], not both")
        return self  # a missing provider/model is reported by validate_config, naming the key

    def targets(self) -> list[DeploymentSettings]:
        """The deployments, whichever form the table used."""
        return self.deployments or [DeploymentSettings(provider=self.provider, model=self.model, weight=1)]


class Settings(_Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    models: dict[str, ModelSettings] = Field(default_factory=dict)


@dataclass
class Config:
    """The merged, validated configuration."""

    settings: Settings
    #: The provider tables, each validated by its plugin's settings model.
    providers: dict[str, ProviderSettings]
    path: Path | None
    #: Dotted key -> where its value came from ("file PATH", "env VAR", "implicit").
    sources: dict[str, str] = field(default_factory=dict)
    implicit_echo: bool = False
    #: "state" / "cache" -> the backend's validated settings.
    stores: dict[str, BaseModel] = field(default_factory=dict)

    @property
    def server(self) -> ServerSettings:
        return self.settings.server


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file. Create it with: modelmux config init --output {path}")
        return path
    env = os.environ.get("MODELMUX_CONFIG_FILE")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"MODELMUX_CONFIG_FILE={env}: no such file. Fix the variable or create the file "
                f"with: modelmux config init --output {env}"
            )
        return path
    for candidate in SEARCH_PATHS:
        path = candidate.expanduser()
        if path.is_file():
            return path
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}. Fix the syntax at that line.") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _record_sources(node: Any, prefix: str, origin: str, sources: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _record_sources(value, f"{prefix}.{key}" if prefix else key, origin, sources)
    else:
        sources[prefix] = origin


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text[:1] in "[{":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return raw
    return raw


def apply_env(data: dict[str, Any], sources: dict[str, str], environ: dict[str, str]) -> None:
    """Overlay ``MODELMUX_SECTION__KEY`` variables onto ``data``."""
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        parts = [p.lower() for p in var[len(ENV_PREFIX) :].split("__")]
        if not all(parts):
            continue
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = _env_value(raw)
        sources[".".join(parts)] = f"env {var}"


def expand_vars(node: Any, key: str, environ: dict[str, str], problems: list[str]) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string value."""
    if isinstance(node, dict):
        return {k: expand_vars(v, f"{key}.{k}" if key else k, environ, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_vars(v, f"{key}[{i}]", environ, problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def sub(match: re.Match[str]) -> str:
        name, has_default, default = match.group(1), match.group(2), match.group(3)
        if name in environ:
            return environ[name]
        if has_default is not None:
            return default or ""
        problems.append(
            f"{key}: environment variable {name} is not set. Export {name}, or write "
            f"${{{name}:-default}} to give a default."
        )
        return ""

    return _VAR.sub(sub, node)


def env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.upper().replace(".", "__")


def _where(dotted: str, path: Path | None) -> str:
    table, _, leaf = dotted.rpartition(".")
    file_hint = f"under [{table}] in {path}" if path else f"under [{table}] in modelmux.toml"
    return f"set {leaf} {file_hint}, or the environment variable {env_name(dotted)}"


def format_validation_error(exc: ValidationError, prefix: str, path: Path | None) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        kind = err["type"]
        if kind == "missing":
            problems.append(f"{loc}: missing. Fix: {_where(loc, path)}.")
        elif kind == "extra_forbidden":
            problems.append(
                f"{loc}: unknown setting (value {err['input']!r}). Fix: remove it or correct "
                "the spelling; docs/configuration.md lists every setting."
            )
        else:
            # redact() also masks a password inside a URL (redis://:pw@host).
            shown = "***" if SECRET_KEYS.search(loc.rsplit(".", 1)[-1]) else repr(redact(err["input"]))
            problems.append(f"{loc}: {err['msg']} (got {shown}). Fix: {_where(loc, path)}.")
    return problems


def load_config(
    explicit: str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Find, read, merge and validate the configuration. Raises ``ConfigError``."""
    env = dict(os.environ if environ is None else environ)
    path = find_config_file(explicit)
    data: dict[str, Any] = _read_toml(path) if path else {}
    sources: dict[str, str] = {}
    if path:
        _record_sources(data, "", f"file {path}", sources)
    apply_env(data, sources, env)
    problems: list[str] = []
    data = expand_vars(data, "", env, problems)
    if problems:
        raise ConfigError(problems)
    return validate_config(data, path, sources, registry)


def validate_config(
    data: dict[str, Any],
    path: Path | None,
    sources: dict[str, str] | None = None,
    registry: Registry | None = None,
) -> Config:
    sources = dict(sources or {})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "", path)) from exc

    implicit = not settings.providers
    if implicit:
        settings.providers = {"echo": {"type": "echo"}}
        settings.models.setdefault("echo", ModelSettings(provider="echo", model="echo"))
        sources.update({"providers.echo.type": "implicit", "models.echo.provider": "implicit"})

    problems: list[str] = []
    providers: dict[str, ProviderSettings] = {}
    stores: dict[str, BaseModel] = {}
    if registry is not None:
        providers = _validate_providers(settings, registry, path, problems)
        for section, table in (("state", registry.state_stores), ("cache", registry.caches)):
            section_settings = getattr(settings, section)
            backend = section_settings.backend
            if backend not in table:
                problems.append(
                    f"{section}.backend: unknown backend {backend!r}. Known: "
                    f"{', '.join(sorted(table))}. Fix: pick one of those, or install the plugin "
                    f"that provides {backend!r} (e.g. pip install modelmux-{backend})."
                )
                continue
            try:
                stores[section] = table[backend].settings_model.model_validate(store_options(settings, section))
            except ValidationError as exc:
                problems.extend(format_validation_error(exc, section, path))
    names = set(settings.providers)
    for model_name, model in settings.models.items():
        if not model.deployments and not (model.provider and model.model):
            for leaf in ("provider", "model"):
                if not getattr(model, leaf):
                    key = f"models.{model_name}.{leaf}"
                    problems.append(
                        f"{key}: missing. Fix: {_where(key, path)}, or list deployments = [{{provider, model}}]."
                    )
            continue
        for i, dep in enumerate(model.targets()):
            if dep.provider not in names:
                where = f"deployments[{i}].provider" if len(model.deployments) > 1 else "provider"
                problems.append(
                    f"models.{model_name}.{where}: no provider named {dep.provider!r}. "
                    f"Configured providers: {', '.join(sorted(names))}. Fix: add [providers.{dep.provider}] "
                    "or correct the name."
                )
        for fb in model.fallbacks:
            if fb not in settings.models:
                problems.append(
                    f"models.{model_name}.fallbacks: {fb!r} is not a configured model. "
                    f"Fix: use one of {', '.join(sorted(settings.models))}."
                )
    known_keys = set(settings.server.api_keys)
    for label, override in settings.server.limits.keys.items():
        if override.api_key not in known_keys:
            problems.append(
                f"server.limits.keys.{label}.api_key: not one of server.api_keys. Fix: add the key to "
                "server.api_keys, or correct it."
            )
    dp = settings.router.default_provider
    if dp is not None and dp not in names:
        problems.append(
            f"router.default_provider: no provider named {dp!r}. Configured providers: {', '.join(sorted(names))}."
        )
    if problems:
        raise ConfigError(problems)
    return Config(settings, providers, path, sources, implicit, stores)


def _validate_providers(
    settings: Settings, registry: Registry, path: Path | None, problems: list[str]
) -> dict[str, ProviderSettings]:
    out: dict[str, ProviderSettings] = {}
    known = ", ".join(registry.provider_types()) or "(none)"
    for name, table in settings.providers.items():
        if not isinstance(table, dict):
            problems.append(f"providers.{name}: must be a table, got {table!r}.")
            continue
        ptype = table.get("type")
        if not ptype:
            problems.append(f"providers.{name}.type: missing. Fix: set type to one of {known}.")
            continue
        reg = registry.providers.get(ptype)
        if reg is None:
            problems.append(
                f"providers.{name}.type: unknown provider type {ptype!r}. Installed types: "
                f"{known}. Fix: pip install modelmux-provider-{ptype} (then check `modelmux "
                "plugins`), or correct the type."
            )
            continue
        try:
            out[name] = reg.settings_model.model_validate(table)  # type: ignore[assignment]
        except ValidationError as exc:
            problems.extend(format_validation_error(exc, f"providers.{name}", path))
    return out


def store_options(settings: Settings, section: str) -> dict[str, Any]:
    """The ``[state]`` or ``[cache]`` table as its backend's settings model takes it."""
    options: dict[str, Any] = getattr(settings, section).model_dump(exclude={"backend", "enabled", "max_entry_bytes"})
    options["namespace"] = section
    if section == "cache":  # the response cache passes its TTL on each write; backends take whole seconds
        options["ttl_seconds"] = max(1, math.ceil(options["ttl_seconds"]))
    return options


def redact(node: Any, key: str = "") -> Any:
    """A copy with secret values replaced by ``***`` (for ``config show`` and logs)."""
    if isinstance(node, dict):
        return {k: redact(v, k) for k, v in node.items()}
    if SECRET_KEYS.search(key) and node not in (None, "", []):
        return ["***" for _ in node] if isinstance(node, list) else "***"
    if isinstance(node, str) and "://" in node and "@" in node:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", node)
    return node
