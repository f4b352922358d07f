"""docs/guides/writing-a-plugin.md builds a provider package in code blocks marked ``file=PATH``:
extract them, install the package as a user would, and run its own tests (contract suite and
gateway tests) and the linter on it, so the tutorial cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "guides" / "writing-a-plugin.md"
FENCE = re.compile(r"^```\w*[ \t]+file=(\S+)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def tutorial_files() -> dict[str, str]:
    """PATH -> text; blocks of one file are joined in order (a method block continues its class)."""
    files: dict[str, str] = {}
    for path, text in FENCE.findall(TUTORIAL.read_text()):
        if path in files:
            files[path] += "\n" if text[:1].isspace() else "\n\n"
            files[path] += text
        else:
            files[path] = text
    return files


def test_the_tutorial_builds_a_whole_package() -> None:
    files = tutorial_files()
    assert set(files) == {
        "pyproject.toml",
        "modelmux_provider_ollama/__init__.py",
        "modelmux_provider_ollama/plugin.py",
        "tests/test_ollama.py",
    }
    assert '[project.entry-points.modelmux]\nollama = "modelmux_provider_ollama.plugin"' in files["pyproject.toml"]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tutorial") / "modelmux-provider-ollama"
    for path, text in tutorial_files().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_the_tutorial_code_is_lint_clean(package: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    config = str(ROOT / "pyproject.toml")
    for args in (["check"], ["format", "--check", "--diff"]):
        result = subprocess.run([str(ruff), *args, "--config", config, str(package)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_tutorial_package_installs_and_passes_its_own_tests(package: Path) -> None:
    """Installed with pip-compatible tooling into a target directory on PYTHONPATH (as in
    tests/e2e/test_plugins_install.py), so the gateway finds it through its entry point."""
    site = package.parent / "site"
    uv = Path(sys.executable).with_name("uv")
    installer = (
        [str(uv), "pip", "install", "--python", sys.executable]
        if uv.exists()
        else [sys.executable, "-m", "pip", "install", "-q"]
    )
    subprocess.run([*installer, "--no-deps", "--target", str(site), str(package)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELMUX_", "PYTEST_"))}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(package), "tests"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 10, result.stdout  # the contract suite ran, not just our four
