"""Shared by the deployment tests: the repository root and `modelmux config validate` as a user runs it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

Validate = Callable[[Path, Mapping[str, str]], str]

Instruction = tuple[str, str]


def _instructions(text: str) -> list[Instruction]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    result: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        result.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return result


def stages(text: str) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for keyword, args in _instructions(text):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


@pytest.fixture(scope="session")
def dockerfile_stages() -> list[list[Instruction]]:
    """The Dockerfile's stages, each a list of (KEYWORD, arguments)."""
    return stages((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="session")
def image_env(dockerfile_stages: list[list[Instruction]]) -> dict[str, str]:
    """The ENV of the image's final stage (what every container of the image starts with)."""
    env: dict[str, str] = {}
    for keyword, args in dockerfile_stages[-1]:
        if keyword == "ENV":
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                env[name] = value
    return env


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def validate_config(tmp_path_factory: pytest.TempPathFactory) -> Validate:
    """Run `modelmux config validate` on a file with exactly the given MODELMUX_*/config variables.

    Only PATH and the locale come from this test process: the check sees the variables the
    deployment gives its container, nothing that happens to be set here. Returns the output;
    fails the test with it when the command fails.
    """
    home = tmp_path_factory.mktemp("validate-home")

    def run(path: Path, env: Mapping[str, str]) -> str:
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
        full = {**base, "HOME": str(home), "COLUMNS": "200", **env, "MODELMUX_CONFIG_FILE": str(path)}
        result = subprocess.run(
            [sys.executable, "-m", "modelmux", "config", "validate"],
            env=full,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"modelmux config validate {path} failed:\n{output}"
        return output

    return run
