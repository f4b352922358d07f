"""docker-compose.yml and docker-compose.vllm.yml agree with the image and with the configs they mount.

No Docker engine here: the compose files are read as compose reads them (YAML, `${VAR}`,
`${VAR:-default}` and `${VAR:?message}` interpolation), and the configuration file each one mounts is
checked with `modelmux config validate` under exactly the environment the container would get (the
image's ENV plus the service's `environment:`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.vllm.yml"]
Validate = Callable[[Path, Mapping[str, str]], str]  # the validate_config fixture

# What a user exports before `docker compose up` (the `:?` variables the files require).
USER_ENV = {"MODELMUX_API_KEY": "test-key", "GOOGLE_CLOUD_PROJECT": "test-project"}
_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution, applied to every string of the file."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?"):
            assert value, f"${{{name}}} is required: {arg}"
            return value
        return value or ""

    return _COMPOSE_VAR.sub(sub, node.replace("$$", "\0")).replace("\0", "$")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{name}: no services"
    result = interpolate(data, USER_ENV)
    assert isinstance(result, dict)
    return result


def gateway(compose: dict[str, Any]) -> dict[str, Any]:
    """The service built from this repository's Dockerfile."""
    (service,) = [s for s in compose["services"].values() if "build" in s]
    return service


def mounted_config(service: dict[str, Any], target: str) -> Path:
    for volume in service.get("volumes", []):
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            assert source.startswith("./"), f"the config is mounted from the repository: {volume}"
            return ROOT / source
    raise AssertionError(f"nothing is mounted at MODELMUX_CONFIG_FILE={target}")


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_mounted_config_validates_with_the_containers_environment(
    name: str, image_env: dict[str, str], validate_config: Validate
) -> None:
    service = gateway(load(name))
    env = {**image_env, **{k: str(v) for k, v in service["environment"].items()}}
    config = mounted_config(service, env["MODELMUX_CONFIG_FILE"])
    assert config.is_file(), f"{name} mounts {config}, which does not exist"
    assert config.parent == ROOT / "examples" / "config"
    container_env = {k: v for k, v in env.items() if k not in ("PATH",)}
    validate_config(config, container_env)


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_ports_and_health_checks_agree_with_the_image(name: str, image_env: dict[str, str]) -> None:
    compose = load(name)
    service = gateway(compose)
    env = {**image_env, **service["environment"]}
    port = env["MODELMUX_SERVER__PORT"]
    settings = tomllib.loads(mounted_config(service, env["MODELMUX_CONFIG_FILE"]).read_text())
    # The image's MODELMUX_SERVER__PORT overrides the file: a different port there would mislead.
    assert str(settings.get("server", {}).get("port", port)) == port
    assert any(str(p).endswith(f":{port}") for p in service["ports"]), service["ports"]
    assert f"127.0.0.1:{port}/health/" in " ".join(service["healthcheck"]["test"])
    assert service["build"]["context"] == "." and (ROOT / "Dockerfile").is_file()
    assert service["build"]["args"]["PLUGINS"] == "all"
    for other, spec in compose["services"].items():
        assert "healthcheck" in spec, f"{name}: service {other} has no healthcheck"
    for dependency, condition in service.get("depends_on", {}).items():
        assert condition == {"condition": "service_healthy"} and "healthcheck" in compose["services"][dependency]


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_upstream_addresses_in_the_config_are_services_of_the_compose_file(name: str) -> None:
    compose = load(name)
    service = gateway(compose)
    text = mounted_config(service, service["environment"]["MODELMUX_CONFIG_FILE"]).read_text()
    urls = re.findall(r"\"((?:https?|redis)://[^\"]+)\"", text)
    assert urls, "the compose configs talk to a service of their compose file"
    for url in urls:
        parts = urlsplit(url)
        upstream = compose["services"].get(parts.hostname or "")
        assert upstream is not None, f"{url}: no service {parts.hostname} in {name}"
        command = " ".join(map(str, upstream.get("command", [])))
        if "--port=" in command:
            assert f"--port={parts.port}" in command, f"{url} does not match {parts.hostname}'s {command}"


def test_the_vertex_compose_mounts_credentials_and_keeps_state_in_redis() -> None:
    service = gateway(load("docker-compose.yml"))
    credentials = service["environment"]["GOOGLE_APPLICATION_CREDENTIALS"]
    assert any(v.split(":")[1] == credentials and v.endswith(":ro") for v in service["volumes"])
    settings = tomllib.loads(ROOT.joinpath("examples/config/compose-vertex.toml").read_text())
    assert settings["state"]["backend"] == settings["cache"]["backend"] == "redis"
