"""``modelmux config init --preset bedrock`` and ``modelmux doctor`` through the real command line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner
from modelmux_provider_bedrock.preset import detect, render

from modelmux.testing import LoopbackServer, cli


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str | None]:
    """Environment overrides for CliRunner: no AWS settings but empty config files."""
    import os

    (tmp_path / "empty").write_text("")
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("AWS_", "MODELMUX_"))}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "empty"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "empty"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_detect_reads_profile_region_and_api_key_without_network() -> None:
    found = detect({"AWS_PROFILE": "team", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_BEARER_TOKEN_BEDROCK": "k"})
    assert found["profile"] == "team" and found["region"] == "eu-west-1" and found["api_key"] is True


def test_region_comes_from_the_profile_when_the_environment_has_none(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "config").write_text("[profile team]\nregion = ap-southeast-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    found = detect({"AWS_PROFILE": "team"})
    assert found["region"] == "ap-southeast-2" and found["region_source"] == "profile team"
    assert 'model = "apac.anthropic.' in render(found)


def test_config_init_writes_a_valid_config_from_the_environment(tmp_path: Path, clean_env: dict[str, Any]) -> None:
    out = tmp_path / "modelmux.toml"
    env = {**clean_env, "AWS_PROFILE": "team", "AWS_REGION": "eu-west-1"}
    runner = CliRunner()
    result = runner.invoke(
        cli(), ["config", "init", "--preset", "bedrock", "--non-interactive", "--output", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    data = tomllib.loads(out.read_text())
    assert data["providers"]["bedrock"] == {
        "type": "bedrock",
        "region": "eu-west-1",
        "profile": "team",
        "timeout_seconds": 120,
        "max_retries": 2,
    }
    assert data["models"]["claude-sonnet"]["model"].startswith("eu.anthropic.claude-sonnet")
    check = runner.invoke(cli(), ["config", "validate", "--config", str(out)], env=env)
    assert check.exit_code == 0, check.output


def test_doctor_passes_against_a_reachable_bedrock_and_fails_with_fixes(
    tmp_path: Path, clean_env: dict[str, Any], fake_bedrock: LoopbackServer, config_for_fake: Any
) -> None:
    path = tmp_path / "modelmux.toml"
    config = config_for_fake(fake_bedrock)
    config["state"] = {"backend": "memory"}
    path.write_text(tomli_w.dumps(config))
    runner = CliRunner()
    ok = runner.invoke(cli(), ["doctor", "--config", str(path)], env=clean_env)
    assert ok.exit_code == 0, ok.output
    assert "credentials found" in ok.output and "endpoint reachable" in ok.output

    table = config["providers"]["bedrock"]
    del table["aws_access_key_id"], table["aws_secret_access_key"]
    table["endpoint_url"] = "http://127.0.0.1:9"  # discard port: nothing listens
    path.write_text(tomli_w.dumps(config))
    bad = runner.invoke(cli(), ["doctor", "--config", str(path)], env=clean_env)
    assert bad.exit_code != 0
    # Rich wraps table cells at the runner's width: look for the words, not the line.
    words = set(re.sub(r"[│┃|]", " ", bad.output).split())
    assert {"FAIL", "fix:", "credentials", "found", "AWS_PROFILE", "reachable"} <= words, bad.output
    auth_only = runner.invoke(cli(), ["troubleshoot", "auth", "--config", str(path)], env=clean_env)
    assert auth_only.exit_code != 0 and "endpoint reachable" not in auth_only.output
