"""The GitHub workflows: CI runs what a developer runs, a v* tag releases every package and the image."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    result = job["steps"]
    assert isinstance(result, list)
    return result


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, f"expected one step using {action}"
    return found[0]


def test_ci_runs_make_test_lint_and_typecheck_on_pushes_and_pull_requests() -> None:
    ci = load("ci.yml")
    assert "pull_request" in ci["on"] and ci["on"]["push"]["branches"] == ["main"]
    test = ci["jobs"]["test"]
    assert "make test" in runs(test).splitlines()
    assert uses(test, "actions/setup-python")["with"]["python-version"] == "3.11"
    assert str(uses(test, "actions/setup-node")["with"]["node-version"]) == "20", "npm installs helm for the tests"
    assert "6379:6379" in test["services"]["redis"]["ports"], "the tests use Redis at 127.0.0.1:6379"
    lint = runs(ci["jobs"]["lint"]).splitlines()
    assert "make lint" in lint and "make typecheck" in lint


def test_ci_builds_the_image_and_smoke_tests_the_container() -> None:
    image = load("ci.yml")["jobs"]["image"]
    build = uses(image, "docker/build-push-action")["with"]
    assert build["push"] is False and build["load"] is True
    smoke = runs(image)
    assert "/health/ready" in smoke and "/v1/chat/completions" in smoke


def test_a_v_tag_releases_every_package_as_sdist_and_wheel() -> None:
    release = load("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    build = release["jobs"]["build"]
    matrix = build["strategy"]["matrix"]["include"]
    packages = {"."} | {p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("plugins/*/pyproject.toml")}
    assert {m["path"] for m in matrix} == packages, "every plugin directory is built and published"
    for entry in matrix:
        name = tomllib.loads((ROOT / entry["path"] / "pyproject.toml").read_text())["project"]["name"]
        assert entry["name"] == name
    command = [line for line in runs(build).splitlines() if "python -m build" in line]
    assert command == ['python -m build --outdir dist "${{ matrix.path }}"'], "sdist and wheel, not one of them"
    assert "version" in _as_list(build["needs"]), "nothing is built before the tag matches the versions"


def test_publishing_to_pypi_uses_trusted_publishing() -> None:
    pypi = load("release.yml")["jobs"]["pypi"]
    assert pypi["permissions"] == {"id-token": "write"}
    publish = uses(pypi, "pypa/gh-action-pypi-publish")
    assert "password" not in publish.get("with", {}), "no API token: OIDC trusted publishing"
    assert uses(pypi, "actions/download-artifact")["with"]["pattern"] == "dist-*"


def test_the_image_is_pushed_for_amd64_and_arm64() -> None:
    image = load("release.yml")["jobs"]["image"]
    uses(image, "docker/setup-qemu-action")
    uses(image, "docker/setup-buildx-action")
    assert uses(image, "docker/login-action")["with"]["registry"] == "ghcr.io"
    push = uses(image, "docker/build-push-action")["with"]
    assert push["push"] is True
    assert set(push["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert image["permissions"]["packages"] == "write"


def test_the_release_version_check_accepts_the_current_version_and_refuses_others() -> None:
    script = ROOT / ".github" / "scripts" / "check_release_version.py"
    assert "check_release_version.py" in runs(load("release.yml")["jobs"]["version"])
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    ok = subprocess.run([sys.executable, str(script), f"v{version}"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    wrong = subprocess.run([sys.executable, str(script), "v999.0.0"], capture_output=True, text=True)
    assert wrong.returncode == 1 and "modelmux-redis" in wrong.stdout


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value
