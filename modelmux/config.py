"""Configuration: TOML file + environment, ``${VAR}`` expansion, pydantic validation.

Search order (first hit wins): ``--config PATH``, ``$MODELMUX_CONFIG_FILE``,
``./modelmux.toml``, ``~/.config/modelmux/config.toml``, ``/etc/modelmux/config.toml``.
No file at all is valid: the echo provider is served alone.

``MODELMUX_<SECTION>__<KEY>`` environment variables override the file (``__``
between levels). Each provider table is validated by the settings model its
plugin registered. Every error names the key, the bad value and the fix.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    from modelmux.provider import ProviderSettings
    from modelmux.registry import Registry
    from modelmux.tools import ToolSettings

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
#: Tables whose every value is a secret, whatever its key: a provider's extra request headers
#: (``headers``) carry credentials under any name (X-Auth-Token, Proxy-Authorization, ...).
SECRET_TABLES = re.compile(r"(^|_)headers$", re.IGNORECASE)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is ready to print, one problem per line."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else problems
        super().__init__("\n".join(self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitOverride(_Strict):
    """``[server.limits.keys.LABEL]``: limits for one client API key (one of ``server.api_keys``)."""

    api_key: str = Field(description="the client key these limits apply to; must be one of server.api_keys")
    requests_per_minute: int | None = Field(None, ge=1, description="this key's own request limit (unset: the default)")
    tokens_per_minute: int | None = Field(None, ge=1, description="this key's own token limit (unset: the default)")


class LimitSettings(_Strict):
    """``[server.limits]``: per client API key rate limits (docs/guides/routing.md); unset means unlimited."""

    requests_per_minute: int | None = Field(
        None, ge=1, description="requests per minute per client API key, a sliding window on the state store"
    )
    tokens_per_minute: int | None = Field(
        None, ge=1, description="tokens per minute per client API key, from the usage upstreams report"
    )
    keys: dict[str, LimitOverride] = Field(
        default_factory=dict, description="one table per key that needs its own limits, under a label you choose"
    )


class ImageSettings(_Strict):
    """``[server.images]``: bounds on the image URLs ModelMux fetches for providers that need image
    bytes (Claude on Vertex, Bedrock); docs/security.md#image-urls."""

    max_per_request: int = Field(
        20,
        ge=0,
        description="image URLs one request may ask ModelMux to fetch (0: none); more is a 400 before any fetch",
    )
    max_total_bytes: int = Field(
        50 * 1024 * 1024,
        gt=0,
        description="bytes of all fetched images of one request together (an image named twice counts twice)",
    )
    max_bytes: int = Field(20 * 1024 * 1024, gt=0, description="bytes of one fetched image")
    timeout_seconds: float = Field(10.0, gt=0, description="time to fetch one image, redirects included")
    concurrency: int = Field(4, ge=1, le=64, description="images of one request fetched at the same time")


class UISettings(_Strict):
    """``[server.ui]``: the web UI at ``/ui`` (docs/ui.md); its data endpoints are read-only."""

    enabled: bool = Field(
        True,
        description="serve the web UI at /ui; it needs server.admin_api_keys unless the server listens on loopback",
    )
    recent_requests: int = Field(
        500, ge=0, le=100_000, description="request log records kept in memory for the UI (per worker); 0: none"
    )
    stats_interval_seconds: float = Field(
        5.0, gt=0, le=3600, description="how often the UI's traffic figures (rate, errors, latency, tokens) are sampled"
    )
    stats_window_minutes: float = Field(
        15.0, gt=0, le=1440, description="how much traffic history the UI's plots keep (in memory, per worker)"
    )
    playground_admin_key: bool = Field(
        False,
        description="let the playground call /v1 with the admin session: admin keys are then also accepted as "
        "client keys on every API endpoint",
    )


class ServerSettings(_Strict):
    """``[server]``: where ModelMux listens, who may call it, and how it logs."""

    host: str = Field("127.0.0.1", description="address to listen on (the container image sets 0.0.0.0)")
    port: int = Field(3000, ge=0, le=65535, description="TCP port to listen on")
    workers: int = Field(1, ge=1, le=256, description="uvicorn worker processes")
    api_keys: list[str] = Field(
        default_factory=list,
        description="client keys, sent as 'Authorization: Bearer KEY' or 'api-key: KEY'; empty: no client auth "
        "(a warning is logged when host is not loopback). /health* and /metrics stay open",
    )
    admin_api_keys: list[str] = Field(
        default_factory=list,
        description="keys that sign in to the web UI at /ui (separate from api_keys); empty: the UI is served "
        "only when host is loopback",
    )
    log_level: Literal["trace", "debug", "info", "warning", "error", "critical"] = Field(
        "info", description="lowest level logged"
    )
    log_format: Literal["pretty", "json"] = Field(
        "pretty", description="pretty for people, json for one JSON object a line (docs/observability.md)"
    )
    log_bodies: bool = Field(
        False, description="log request and JSON answer bodies, secrets redacted, at most 16 KiB each"
    )
    ready_check_interval_seconds: float = Field(
        15.0, ge=0, description="how long /health and /health/ready reuse each provider's readiness probe"
    )
    ready_requires_providers: Literal["none", "any", "all"] = Field(
        "none",
        description="whether /health/ready also waits for upstreams: none (only this process: configuration, "
        "providers made, state store), any (at least one provider's probe passes), all (every provider's)",
    )
    max_request_bytes: int = Field(
        32 * 1024 * 1024,
        gt=0,
        description="larger request bodies get a 413 (checked on content-length and while reading)",
    )
    url_fetch_allow: list[str] = Field(
        default_factory=list,
        description="hosts image URLs may be fetched from even when they resolve to private or loopback addresses",
    )
    images: ImageSettings = Field(default_factory=ImageSettings, description="limits of image URL fetching")
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="a client must send a request's headers within this (from connecting, or from the request's "
        "first byte on a kept-alive connection); else a 408 and the connection is closed (docs/security.md)",
    )
    body_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="a client must send a request's whole body within this after its headers; else the "
        "connection is closed and the request logged as a 408 (docs/security.md)",
    )
    shutdown_timeout_seconds: float = Field(
        30.0, ge=0, description="on SIGTERM: how long running requests and streams may finish before they are cut"
    )
    limits: LimitSettings = Field(default_factory=LimitSettings, description="client rate limits")
    ui: UISettings = Field(default_factory=UISettings, description="the web UI at /ui")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(base).expanduser() / "modelmux"


class StateSettings(BaseModel):
    """``[state]``: where stored Responses API responses and shared counters (rate limits) live
    (docs/stores.md). ``backend``, ``ttl_seconds`` and the ``max_*`` limits (docs/security.md) belong to ModelMux;
    other keys are the backend's options."""

    model_config = ConfigDict(extra="allow")
    backend: str = Field("disk", description="memory, disk, redis (plugin modelmux-redis) or any registered name")
    ttl_seconds: int = Field(30 * 24 * 3600, gt=0, description="how long a stored response lives (30 days)")
    max_record_bytes: int = Field(
        32 * 1024 * 1024,
        gt=0,
        description="largest stored response (its own input and output): a larger input is a 413 when "
        "store is true; a larger answer is returned but not stored",
    )
    max_bytes_per_key: int = Field(
        512 * 1024 * 1024,
        ge=0,
        description="bytes of stored responses each client key may write per ttl_seconds (all clients share "
        "one quota without server.api_keys); over it, store: true is a 429; 0: no quota",
    )
    max_conversation_depth: int = Field(
        1000, gt=0, description="responses one previous_response_id chain may hold; continuing further is a 400"
    )


class CacheSettings(BaseModel):
    """``[cache]``: the exact-match response cache (docs/caching.md). Other keys are the backend's options."""

    model_config = ConfigDict(extra="allow")
    enabled: bool = Field(False, description="cache every model's answers (a model's own cache setting overrides it)")
    backend: str = Field("disk", description="memory, disk, redis (plugin modelmux-redis) or any registered name")
    ttl_seconds: float = Field(3600, gt=0, description="how long an answer stays (may be fractional)")
    max_entry_bytes: int = Field(1024 * 1024, gt=0, description="larger answers are not stored")


class TracingSettings(_Strict):
    """``[tracing]``: OpenTelemetry spans (needs ``pip install 'modelmux[otel]'``; docs/observability.md)."""

    enabled: bool = Field(
        False, description="a span per request and per upstream attempt; W3C traceparent sent upstream"
    )
    service_name: str = Field(
        "modelmux", description="service.name when ModelMux sets up the SDK itself (exporter from OTEL_EXPORTER_OTLP_*)"
    )


class CircuitBreakerSettings(_Strict):
    """A deployment that fails ``failures`` times in a row (connection, timeout, 5xx, credentials;
    never a 4xx or 429) is skipped for ``cooldown_seconds``, then one trial request decides whether
    it is back. A request's last way to an answer is never skipped (docs/guides/routing.md)."""

    failures: int = Field(5, ge=1, description="deployment failures in a row that take a deployment out")
    cooldown_seconds: float = Field(30.0, gt=0, description="how long it stays out before one trial request")
    min_requests: int = Field(
        5,
        ge=1,
        description="attempts a deployment must have had (since start or since its breaker last closed) "
        "before its breaker may open",
    )
    max_ejection_percent: float = Field(
        50.0,
        ge=0,
        le=100,
        description="most of a request's deployments (its model's and its fallbacks') that may be skipped at once; "
        "past it, the ones back soonest are tried anyway. The last way is never skipped (panic mode)",
    )
    max_retry_after_seconds: float = Field(
        300.0,
        gt=0,
        description="longest cool-down a 429's retry-after may put a deployment in (only when the request "
        "has another deployment or a fallback)",
    )
    shared: Literal["auto", "on", "off"] = Field(
        "auto",
        description="share breakers and 429 cool-downs across replicas through the [state] store: auto when the "
        "backend is shared by replicas (redis), on whatever the backend (disk: the workers of one machine), off",
    )
    sync_interval_seconds: float = Field(
        1.0, gt=0, description="shared breakers: how often each replica sends its changes and reads the others'"
    )


class RouterSettings(_Strict):
    """``[router]``: how a request's model is resolved and how long it may take (docs/guides/routing.md)."""

    default_provider: str | None = Field(
        None,
        description="a model that is neither a [models] name nor PROVIDER/MODEL goes to this provider unchanged; "
        "unset: such a model is a 404",
    )
    deadline_seconds: float = Field(
        300.0,
        gt=0,
        description="overall budget of one request until its answer starts: every attempt, backoff and fallback",
    )
    circuit_breaker: CircuitBreakerSettings = Field(
        default_factory=CircuitBreakerSettings, description="per-deployment circuit breaker"
    )


class DeploymentSettings(_Strict):
    """One place a model runs: a configured provider, its upstream model id, a balancing weight."""

    provider: str = Field(description="a [providers] name")
    model: str = Field(description="the upstream model id on that provider")
    weight: int = Field(1, ge=1, le=1000, description="share of requests under weighted_round_robin")


Strategy = Literal["weighted_round_robin", "least_inflight"]


class ModelSettings(_Strict):
    """``[models.NAME]``: a model name clients may ask for. Either ``provider`` + ``model`` (one
    deployment) or ``deployments`` (several, balanced by ``strategy``)."""

    provider: str = Field("", description="a [providers] name (with model; or use deployments)")
    model: str = Field("", description="the upstream model id (the deployment name on Azure)")
    deployments: list[DeploymentSettings] = Field(
        default_factory=list, description="instead of provider + model: several deployments, balanced by strategy"
    )
    strategy: Strategy = Field("weighted_round_robin", description="how deployments share requests")
    fallbacks: list[str] = Field(
        default_factory=list,
        description="other [models] names tried in order when this one fails before any byte reached the client",
    )
    strict_tools: bool = Field(
        False,
        description="Responses API: a built-in tool (web_search, ...) this model's provider cannot run is a 400 "
        "naming the tool, instead of being dropped with a log line and an x-modelmux-dropped-tools header",
    )
    cache: bool | None = Field(
        None, description="the response cache for this model: true or false; unset follows [cache] enabled"
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="provider options for this model, read by its provider (e.g. input_type of Cohere Embed on "
        "Bedrock, task_type of Vertex AI embeddings); each provider's page lists the keys it reads",
    )

    @model_validator(mode="after")
    def _one_form(self) -> ModelSettings:
        if self.deployments and (self.provider or self.model):
            raise ValueError("set either provider + model (one deployment) or deployments = [...], not both")
        return self  # a missing provider/model is reported by validate_config, naming the key

    def targets(self) -> list[DeploymentSettings]:
        """The deployments, whichever form the table used."""
        return self.deployments or [DeploymentSettings(provider=self.provider, model=self.model, weight=1)]


class ToolsSettings(BaseModel):
    """``[tools]``: built-in tools the gateway runs itself for the Responses API (docs/guides/built-in-tools.md).
    Each ``[tools.TYPE]`` table turns on the tool plugin registered for ``TYPE`` (``web_search``,
    ``file_search``, ...) and holds that plugin's settings."""

    model_config = ConfigDict(extra="allow")
    max_rounds: int = Field(
        4,
        ge=1,
        le=32,
        description="model calls one Responses request may make while gateway tools run (the last one is offered "
        "no tools, so the model answers)",
    )


class Settings(_Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)


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
    #: Tool type (as registered, aliases resolved) -> its ``[tools.TYPE]`` table, validated by the plugin's model.
    tools: dict[str, ToolSettings] = field(default_factory=dict)

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


def is_secret_setting(dotted: str) -> bool:
    """Whether the setting at ``dotted`` (``providers.vllm.headers.X-Auth-Token``) holds a secret."""
    parts = dotted.split(".")
    return bool(SECRET_KEYS.search(parts[-1])) or any(SECRET_TABLES.search(p) for p in parts[:-1])


#: ModelMux's own plugin packages, by the provider types and store backends they register: an
#: unknown type's fix names a real package, never one made from a misspelled name.
OWN_PLUGIN_PACKAGES = {
    "openai_compatible": "modelmux-provider-vllm",
    "vllm": "modelmux-provider-vllm",
    "vertex": "modelmux-provider-vertex",
    "azure": "modelmux-provider-azure",
    "bedrock": "modelmux-provider-bedrock",
    "redis": "modelmux-redis",
    "web_search": "modelmux-tool-web-search",
    "file_search": "modelmux-tool-file-search",
}


def did_you_mean(name: str, known: list[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``known``, or nothing."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _unknown_name(kind: str, key: str, name: str, installed: list[str]) -> str:
    """The problem of an unknown provider type or store backend, with a fix that never tells
    to install a package named after a misspelling."""
    head = f"{key}: unknown {kind} {name!r}. Installed: {', '.join(installed) or '(none)'}."
    package = OWN_PLUGIN_PACKAGES.get(name)
    if package is not None:
        return f"{head} Fix: pip install {package} (then check `modelmux plugins`), or pick an installed one."
    close = difflib.get_close_matches(name, [*installed, *OWN_PLUGIN_PACKAGES], n=1, cutoff=0.6)
    if close and close[0] in installed:
        return f"{head} Did you mean {close[0]!r}? Fix: correct the spelling."
    if close:
        return (
            f"{head} Did you mean {close[0]!r}? Fix: correct the spelling, then "
            f"pip install {OWN_PLUGIN_PACKAGES[close[0]]} (then check `modelmux plugins`)."
        )
    return (
        f"{head} Fix: correct it, or install the plugin package that registers it "
        "(docs/plugins.md lists ModelMux's own; `modelmux plugins` shows what is installed and what failed to load)."
    )


def _model_at(annotation: Any) -> type[BaseModel] | None:
    """The settings model an annotation holds (through ``X | None``), or None."""
    if get_origin(annotation) in (Union, types.UnionType):
        return next((m for m in map(_model_at, get_args(annotation)) if m is not None), None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _keys_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys the table at ``loc`` (in ``model``) takes: the candidates for a misspelled key."""
    node: Any = model
    for part in loc:
        current = _model_at(node)
        if current is not None:
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return []
            node = field_info.annotation
        elif get_origin(node) in (dict, list):
            node = get_args(node)[-1]  # a table of named tables, or a list: the item's type
        else:
            return []
    current = _model_at(node)
    return list(current.model_fields) if current is not None else []


def format_validation_error(
    exc: ValidationError, prefix: str, path: Path | None, model: type[BaseModel] | None = None
) -> list[str]:
    """One problem per error of ``exc`` (``model``: the settings model that raised it, for "did you mean")."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        kind = err["type"]
        if kind == "missing":
            problems.append(f"{loc}: missing. Fix: {_where(loc, path)}.")
        elif kind == "extra_forbidden":
            # No value shown: a misspelled secret's name (api_kye) would not be masked.
            hint = did_you_mean(str(err["loc"][-1]), _keys_at(model, err["loc"][:-1]))
            problems.append(
                f"{loc}: unknown setting.{hint} Fix: remove it or correct "
                "the spelling; docs/configuration.md lists every setting."
            )
        else:
            # redact() also masks a password inside a URL (redis://:pw@host).
            shown = "***" if is_secret_setting(loc) else repr(redact(err["input"]))
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
    data = expand_vars(data, "", env, problems)  # an unset variable reads as "": validation goes on
    try:
        config = validate_config(data, path, sources, registry)
    except ConfigError as exc:
        said = {_key_of(p) for p in problems}
        raise ConfigError([*problems, *(p for p in exc.problems if _key_of(p) not in said)]) from exc
    if problems:
        raise ConfigError(problems)
    return config


def _key_of(problem: str) -> str:
    return problem.split(": ", 1)[0]


#: How many rounds ``validate_config`` takes a bad value out and validates again.
_ROUNDS = 10


def _validate_settings(data: dict[str, Any], path: Path | None, problems: list[str]) -> tuple[Settings, set[str]]:
    """``Settings`` from ``data`` with each bad value taken out (reported in ``problems``), so that
    the checks across tables still run: every problem at once, not one class of them per run.
    Also the dotted keys of the tables taken out whole (a provider or model that is not a table)."""
    data = copy.deepcopy(data)  # a copy to take bad values out of
    removed: set[str] = set()
    for _ in range(_ROUNDS):
        try:
            return Settings.model_validate(data), removed
        except ValidationError as exc:
            problems.extend(format_validation_error(exc, "", path, Settings))
            for err in exc.errors():
                removed.add(_take_out(data, err["loc"]))
    raise ConfigError(problems)


def _take_out(data: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """Remove the value at ``loc`` (through tables and lists; where the path ends early, the
    deepest key on it) so that it takes its default. Returns the dotted key removed."""
    steps: list[tuple[Any, Any]] = []
    node: Any = data
    for part in loc:
        steps.append((node, part))
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    for depth in range(len(steps) - 1, -1, -1):
        container, part = steps[depth]
        if isinstance(container, dict) and part in container:
            del container[part]
            return ".".join(map(str, loc[: depth + 1]))
    return ""


def validate_config(
    data: dict[str, Any],
    path: Path | None,
    sources: dict[str, str] | None = None,
    registry: Registry | None = None,
) -> Config:
    sources = dict(sources or {})
    problems: list[str] = []
    settings, removed = _validate_settings(data, path, problems)

    implicit = not settings.providers and not any(k.startswith("providers.") for k in removed)
    if implicit:
        settings.providers = {"echo": {"type": "echo"}}
        settings.models.setdefault("echo", ModelSettings(provider="echo", model="echo"))
        sources.update({"providers.echo.type": "implicit", "models.echo.provider": "implicit"})

    providers: dict[str, ProviderSettings] = {}
    stores: dict[str, BaseModel] = {}
    tools: dict[str, ToolSettings] = {}
    if registry is not None:
        providers = _validate_providers(settings, registry, path, problems)
        tools = _validate_tools(settings, registry, path, problems)
        for section, table in (("state", registry.state_stores), ("cache", registry.caches)):
            section_settings = getattr(settings, section)
            backend = section_settings.backend
            if backend not in table:
                problems.append(_unknown_name("backend", f"{section}.backend", backend, sorted(table)))
                continue
            store_model = table[backend].settings_model
            try:
                stores[section] = store_model.model_validate(store_options(settings, section))
            except ValidationError as exc:
                problems.extend(format_validation_error(exc, section, path, store_model))
    # A provider or model taken out above (not a table) still counts as named: no second problem.
    names = set(settings.providers) | {k.split(".")[1] for k in removed if k.startswith("providers.")}
    model_names = set(settings.models) | {k.split(".")[1] for k in removed if k.startswith("models.")}
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
                    f"models.{model_name}.{where}: no provider named {dep.provider!r}."
                    f"{did_you_mean(dep.provider, sorted(names))} "
                    f"Configured providers: {', '.join(sorted(names))}. Fix: add [providers.{dep.provider}] "
                    "or correct the name."
                )
        for fb in model.fallbacks:
            if fb not in model_names:
                problems.append(
                    f"models.{model_name}.fallbacks: {fb!r} is not a configured model."
                    f"{did_you_mean(fb, sorted(model_names))} Fix: use one of {', '.join(sorted(model_names))}."
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
            f"router.default_provider: no provider named {dp!r}.{did_you_mean(dp, sorted(names))} "
            f"Configured providers: {', '.join(sorted(names))}."
        )
    if problems:
        raise ConfigError(problems)
    return Config(settings, providers, path, sources, implicit, stores, tools)


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
                _unknown_name("provider type", f"providers.{name}.type", str(ptype), list(registry.provider_types()))
            )
            continue
        try:
            out[name] = reg.settings_model.model_validate(table)  # type: ignore[assignment]
        except ValidationError as exc:
            problems.extend(format_validation_error(exc, f"providers.{name}", path, reg.settings_model))
    return out


def _validate_tools(
    settings: Settings, registry: Registry, path: Path | None, problems: list[str]
) -> dict[str, ToolSettings]:
    """Each ``[tools.TYPE]`` table by the settings model of the plugin registered for TYPE."""
    out: dict[str, ToolSettings] = {}
    installed = sorted({reg.name for reg in registry.tools.values()})
    for name, table in (settings.tools.model_extra or {}).items():
        key = f"tools.{name}"
        reg = registry.tools.get(name)
        if reg is None:
            problem = _unknown_name("tool", key, name, installed)
            problems.append(problem.replace(f"{key}: unknown tool", f"{key}: no installed plugin runs the tool", 1))
            continue
        if not isinstance(table, dict):
            problems.append(f"{key}: must be a table (the {name} tool's settings, or empty), got {redact(table)!r}.")
            continue
        if reg.name in out:
            problems.append(
                f"{key}: the tool {reg.name!r} is configured twice ([tools.{reg.name}] and an alias). "
                "Fix: keep one table."
            )
            continue
        try:
            out[reg.name] = reg.settings_model.model_validate(table)  # type: ignore[assignment]
        except ValidationError as exc:
            problems.extend(format_validation_error(exc, key, path, reg.settings_model))
    return out


#: Keys of ``[state]`` / ``[cache]`` that are ModelMux's own, not the backend's.
_HOST_STORE_KEYS = {
    "backend",
    "enabled",
    "max_entry_bytes",
    "max_record_bytes",
    "max_bytes_per_key",
    "max_conversation_depth",
}


def store_options(settings: Settings, section: str) -> dict[str, Any]:
    """The ``[state]`` or ``[cache]`` table as its backend's settings model takes it."""
    options: dict[str, Any] = getattr(settings, section).model_dump(exclude=_HOST_STORE_KEYS)
    options["namespace"] = section
    if section == "cache":  # the response cache passes its TTL on each write; backends take whole seconds
        options["ttl_seconds"] = max(1, math.ceil(options["ttl_seconds"]))
    return options


def shown(config: Config) -> dict[str, Any]:
    """The merged configuration as ``config show`` and the web UI print it: secrets as ``***``."""
    data: dict[str, Any] = config.settings.model_dump(mode="json", exclude_none=True)
    data["providers"] = {n: p.model_dump(mode="json", exclude_none=True) for n, p in config.providers.items()}
    for name, tool in config.tools.items():
        data["tools"][name] = tool.model_dump(mode="json", exclude_none=True)
    shown_data: dict[str, Any] = redact(data)
    return shown_data


def source_of(config: Config, dotted: str) -> str:
    """Where the value at ``dotted`` came from: ``file PATH``, ``env VAR``, ``implicit`` or ``default``
    (a table set as a whole, e.g. by one JSON environment variable, gives its keys its source)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        found = config.sources.get(".".join(parts[:end]))
        if found is not None:
            return found
    return "default"


def redact(node: Any, key: str = "") -> Any:
    """A copy with secret values replaced by ``***`` (for ``config show`` and logs)."""
    if isinstance(node, dict):
        if SECRET_TABLES.search(key):
            return {k: "***" if v not in (None, "") else v for k, v in node.items()}
        return {k: redact(v, k) for k, v in node.items()}
    if SECRET_KEYS.search(key) and node not in (None, "", []):
        return ["***" for _ in node] if isinstance(node, list) else "***"
    if isinstance(node, str) and "://" in node and "@" in node:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", node)
    return node
