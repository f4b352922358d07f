"""Configuration: search order, ${VAR} expansion, environment overrides, and errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmux.config import ConfigError, load_config, redact
from modelmux.plugins import load_plugins

REGISTRY = load_plugins().registry

ECHO = """
[providers.e]
type = "echo"

[models.m]
provider = "e"
model = "echo"
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No stray config from the developer's machine: empty cwd and HOME."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key in list(__import__("os").environ):
        if key.startswith("MODELMUX_"):
            monkeypatch.delenv(key)
    return tmp_path


def test_no_file_serves_echo_only() -> None:
    cfg = load_config(None, REGISTRY)
    assert cfg.path is None and cfg.implicit_echo
    assert list(cfg.providers) == ["echo"] and "echo" in cfg.settings.models


def test_search_order(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home_cfg = isolated / "home" / ".config" / "modelmux" / "config.toml"
    home_cfg.parent.mkdir(parents=True)
    home_cfg.write_text("[server]\nport = 1001\n")
    assert load_config(None, REGISTRY).server.port == 1001
    (isolated / "modelmux.toml").write_text("[server]\nport = 1002\n")
    assert load_config(None, REGISTRY).server.port == 1002
    env_file = isolated / "env.toml"
    env_file.write_text("[server]\nport = 1003\n")
    monkeypatch.setenv("MODELMUX_CONFIG_FILE", str(env_file))
    assert load_config(None, REGISTRY).server.port == 1003
    explicit = isolated / "explicit.toml"
    explicit.write_text("[server]\nport = 1004\n")
    assert load_config(explicit, REGISTRY).server.port == 1004


def test_missing_explicit_file_says_how_to_create_it(isolated: Path) -> None:
    with pytest.raises(ConfigError, match="modelmux config init --output"):
        load_config(isolated / "nope.toml", REGISTRY)


def test_variables_are_expanded_with_defaults(isolated: Path) -> None:
    path = isolated / "c.toml"
    path.write_text(ECHO + '[server]\napi_keys = ["${KEY_A}", "${KEY_B:-fallback}"]\nhost = "${HOST:-127.0.0.1}"\n')
    cfg = load_config(path, REGISTRY, environ={"KEY_A": "alpha"})
    assert cfg.server.api_keys == ["alpha", "fallback"] and cfg.server.host == "127.0.0.1"


def test_missing_variable_names_the_variable_and_the_key(isolated: Path) -> None:
    path = isolated / "c.toml"
    path.write_text(ECHO + '[server]\napi_keys = ["${SECRET_KEY}"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, REGISTRY, environ={})
    assert "server.api_keys[0]" in str(info.value) and "SECRET_KEY" in str(info.value)


def test_environment_overrides_the_file_and_records_sources(isolated: Path) -> None:
    path = isolated / "c.toml"
    path.write_text(ECHO + "[server]\nport = 4000\n")
    env = {
        "MODELMUX_SERVER__PORT": "8080",
        "MODELMUX_SERVER__API_KEYS": '["k1", "k2"]',
        "MODELMUX_PROVIDERS__OTHER__TYPE": "echo",
        "MODELMUX_MODELS__SECOND__PROVIDER": "other",
        "MODELMUX_MODELS__SECOND__MODEL": "x",
    }
    cfg = load_config(path, REGISTRY, environ=env)
    assert cfg.server.port == 8080 and cfg.server.api_keys == ["k1", "k2"]
    assert cfg.settings.models["second"].provider == "other" and "other" in cfg.providers
    assert cfg.sources["server.port"] == "env MODELMUX_SERVER__PORT"
    assert cfg.sources["providers.e.type"] == f"file {path}"


def test_a_container_needs_no_file() -> None:
    env = {"MODELMUX_PROVIDERS__E__TYPE": "echo", "MODELMUX_MODELS__A__PROVIDER": "e", "MODELMUX_MODELS__A__MODEL": "m"}
    cfg = load_config(None, REGISTRY, environ=env)
    assert cfg.path is None and not cfg.implicit_echo and list(cfg.settings.models) == ["a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nport = 'abc'\n", ["server.port", "'abc'", "MODELMUX_SERVER__PORT"]),
        ("[server]\nprot = 1\n", ["server.prot", "unknown setting"]),
        ("[providers.x]\ntype = 'nosuch'\n", ["providers.x.type", "'nosuch'", "docs/plugins.md"]),
        ("[providers.x]\nbase = 1\n", ["providers.x.type: missing", "echo"]),
        ("[providers.x]\ntype = 'echo'\ndelay_ms = -5\n", ["providers.x.delay_ms", "-5"]),
        (ECHO + "[models.z]\nprovider = 'ghost'\nmodel = 'y'\n", ["models.z.provider", "'ghost'", "[providers.ghost]"]),
        (ECHO + "[models.z]\nprovider = 'e'\nmodel = 'y'\nfallbacks = ['gone']\n", ["models.z.fallbacks", "'gone'"]),
        (ECHO + "[models.z]\nprovider = 'e'\n", ["models.z.model: missing"]),
        (ECHO + "[router]\ndefault_provider = 'ghost'\n", ["router.default_provider", "'ghost'"]),
        (ECHO + "[state]\nbackend = 'tape'\n", ["state.backend", "'tape'", "memory"]),
        ("[server\nport = 1\n", ["invalid TOML"]),
        (ECHO + "[state]\nbackend = 'memory'\nmax_items = 0\n", ["state.max_items", "0"]),
        (ECHO + "[cache]\nbackend = 'disk'\ncolour = 'red'\n", ["cache.colour", "unknown setting"]),
    ],
)
def test_errors_name_the_key_the_value_and_the_fix(isolated: Path, text: str, expected: list[str]) -> None:
    path = isolated / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, REGISTRY)
    for needle in expected:
        assert needle in str(info.value)


def test_secrets_are_redacted() -> None:
    shown = redact(
        {"server": {"api_keys": ["a", "b"]}, "providers": {"v": {"api_key": "sk-1", "url": "redis://:pw@host:6379/0"}}}
    )
    assert shown["server"]["api_keys"] == ["***", "***"]
    assert shown["providers"]["v"] == {"api_key": "***", "url": "redis://:***@host:6379/0"}
    # every value of a headers table, whatever the header's name (issue 15)
    headers = redact({"headers": {"Authorization": "Bearer sk-x", "X-Auth-Token": "k", "X-Team": "blue"}})
    assert headers == {"headers": {"Authorization": "***", "X-Auth-Token": "***", "X-Team": "***"}}
    assert redact({"extra_headers": {"Ocp-Apim-Subscription-Key": "abc"}}) == {
        "extra_headers": {"Ocp-Apim-Subscription-Key": "***"}
    }


def test_secret_values_are_collected_for_log_scrubbing() -> None:
    from modelmux.app import _secret_values

    found = set(
        _secret_values(
            [
                {
                    "api_key": "sk-1",
                    "headers": {"Authorization": "Bearer t", "Proxy-Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
                    "url": "redis://u:pw@h/0",
                    "region": "x",
                }
            ]
        )
    )
    # a header value, and the credential after its scheme when it is long enough to be one
    assert found == {"sk-1", "Bearer t", "Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "pw"}


def test_a_bad_value_deep_in_a_list_is_reported_once(isolated: Path) -> None:
    # The bad weight is set aside, not its model: no second problem about the same model.
    path = isolated / "bad.toml"
    path.write_text(
        ECHO + "[models.z]\ndeployments = [{provider = 'e', model = 'm', weight = 0}]\nfallbacks = ['gone']\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, REGISTRY)
    assert [p.split(": ", 1)[0] for p in info.value.problems] == ["models.z.deployments.0.weight", "models.z.fallbacks"]
