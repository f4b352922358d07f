"""The command line: config init/show/validate, plugins, models, doctor, and --help everywhere."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from modelmux.cli import main


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("MODELMUX_CONFIG_FILE", raising=False)
    return CliRunner()


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out.extend(_all_commands(cmd, (*prefix, name)))
    return out


def test_every_command_has_help(runner: CliRunner) -> None:
    commands = _all_commands(main)
    assert ("config", "init") in commands and ("doctor",) in commands and ("troubleshoot",) in commands
    for cmd in commands:
        result = runner.invoke(main, [*cmd, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, cmd


def test_config_init_echo_writes_a_file_that_validates(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "conf" / "modelmux.toml"
    result = runner.invoke(main, ["config", "init", "--preset", "echo", "--non-interactive", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "[providers.echo]" in out.read_text()
    check = runner.invoke(main, ["config", "validate", "--config", str(out)])
    assert check.exit_code == 0 and "ok" in check.output
    again = runner.invoke(main, ["config", "init", "--preset", "echo", "--non-interactive", "--output", str(out)])
    assert again.exit_code != 0 and "--force" in again.output


def test_config_init_unknown_preset_fails(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config", "init", "--preset", "nope", "--non-interactive"])
    assert result.exit_code != 0 and "echo" in result.output


def test_validate_reports_problems_with_non_zero_status(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'x'\n")
    result = runner.invoke(main, ["config", "validate", "--config", str(bad)])
    assert result.exit_code == 2 and "server.port" in result.output


def test_config_show_hides_secrets_and_tells_sources(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\napi_keys = ["sk-very-secret"]\n')
    result = runner.invoke(
        main, ["config", "show", "--config", str(cfg), "--sources"], env={"MODELMUX_SERVER__PORT": "9999"}
    )
    assert result.exit_code == 0, result.output
    assert "sk-very-secret" not in result.output and "***" in result.output
    assert "port = 9999" in result.output and "env MODELMUX_SERVER__PORT" in result.output


def test_models_and_plugins_and_doctor(runner: CliRunner) -> None:
    models = runner.invoke(main, ["models"])
    assert models.exit_code == 0 and "echo" in models.output
    upstream = runner.invoke(main, ["models", "--provider", "echo"])
    assert upstream.exit_code == 0 and "echo" in upstream.output
    missing = runner.invoke(main, ["models", "--provider", "ghost"])
    assert missing.exit_code != 0
    plugins = runner.invoke(main, ["plugins"])
    assert "provider echo" in plugins.output and "state store disk" in plugins.output
    doctor = runner.invoke(main, ["doctor"])
    assert doctor.exit_code == 0, doctor.output
    assert "state store disk answers" in doctor.output
    topic = runner.invoke(main, ["troubleshoot", "config"])
    assert topic.exit_code == 0
