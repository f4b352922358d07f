"""Shared by the deployment tests: the repository root and `modelmux config validate` as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

Validate = Callable[[Path, Mapping[str, str]], str]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def validate_config(tmp_path_factory: pytest.TempPathFactory) -> Validate:
    """Run `modelmux config validate` on a file with exactly the given MODELMUX_*/config variables.

    The variables of this test process that could change the result (MODELMUX_*, XDG_*, HOME) are
    replaced, so the check sees what the deployment's container would see. Returns the output;
    fails the test with it when the command fails.
    """
    home = tmp_path_factory.mktemp("validate-home")

    def run(path: Path, env: Mapping[str, str]) -> str:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MODELMUX_", "XDG_"))}
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
