"""`modelmux doctor`, `plugins` and `models` run as a user runs them (a subprocess, output to a
pipe): text with [brackets] shown as written, names never cut, each fact said once, the
environment variable named when a value came from one, configured models checked upstream."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiohttp import web

from modelmux.testing import LoopbackServer, free_port, serve_aiohttp

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MODELMUX = str(Path(sys.executable).parent / "modelmux")


def run(
    tmp_path: Path, *args: str, config: dict[str, Any] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``modelmux ARGS`` with the output on pipes (not a terminal) and no COLUMNS."""
    argv = [MODELMUX, *args]
    if config is not None:
        path = tmp_path / "modelmux.toml"
        path.write_text(tomli_w.dumps(config))
        argv += ["--config", str(path)]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELMUX_") and k != "COLUMNS"}
    environ.update(HOME=str(tmp_path), **env)
    return subprocess.run(argv, capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=60)


@pytest.fixture
def upstream() -> Iterator[LoopbackServer]:
    """An OpenAI-compatible upstream that serves one model."""
    app = web.Application()

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": LLAMA, "object": "model"}]})

    app.router.add_get("/v1/models", models)
    with serve_aiohttp(app) as server:
        yield server


def _vllm(base_url: str | None, **models: str) -> dict[str, Any]:
    provider: dict[str, Any] = {"type": "vllm"}
    if base_url is not None:
        provider["base_url"] = base_url
    return {
        "providers": {"vllm": provider},
        "models": {name: {"provider": "vllm", "model": model} for name, model in models.items()},
        "state": {"backend": "memory"},
    }


def _row(out: str, text: str) -> list[str]:
    """The table lines of the row whose first line holds ``text`` (a row continues on lines
    whose first two cells are empty)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if text in line)
    row = [lines[start]]
    for line in lines[start + 1 :]:
        cells = line.split("│")
        if len(cells) < 3 or cells[1].strip() or cells[2].strip():
            break
        row.append(line)
    return row


def test_doctor_checks_configured_models_against_the_upstream(tmp_path: Path, upstream: LoopbackServer) -> None:
    good = run(tmp_path, "doctor", config=_vllm(f"{upstream.url}/v1", llama=LLAMA))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "configured models exist upstream" in good.stdout and LLAMA in good.stdout

    typo = LLAMA[:-1]
    bad = run(tmp_path, "doctor", config=_vllm(f"{upstream.url}/v1", llama=LLAMA, typo=typo))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    row = " ".join(_row(bad.stdout, f"model {typo} exists upstream"))
    assert "FAIL" in row and f"Did you mean '{LLAMA}'?" in row and "models.typo" in row
    assert "modelmux models --provider vllm" in row  # how to see what it offers
    assert "1 check(s) failed" in bad.stderr


def test_doctor_names_the_environment_variable_and_says_each_thing_once(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    result = run(tmp_path, "doctor", config=_vllm(None, llama=LLAMA), MODELMUX_PROVIDERS__VLLM__BASE_URL=closed)
    assert result.returncode == 1, result.stdout + result.stderr
    row = " ".join(_row(result.stdout, "upstream reachable"))
    assert "FAIL" in row and "cannot connect to" in row
    assert "MODELMUX_PROVIDERS__VLLM__BASE_URL" in row  # the value is not in the file: say where it is
    assert "provider vllm:" not in row  # the row's "where" says it
    assert row.count("fix:") == 1 and "Fix:" not in row  # one fix a row
    assert "could not start" not in result.stderr and "ERROR" not in result.stderr  # no log lines repeating it


def test_doctor_shows_bracketed_names_as_written(tmp_path: Path) -> None:
    # "check [state]" used to reach the terminal as "check ": rich took [state] for markup.
    config = {"state": {"backend": "redis", "url": f"redis://127.0.0.1:{free_port()}/0"}}
    result = run(tmp_path, "doctor", config=config)
    assert result.returncode == 1, result.stdout + result.stderr
    row = " ".join(_row(result.stdout, "state store answers"))
    assert "fix: check [state]" in row


def test_plugins_and_models_never_cut_names_on_a_pipe(tmp_path: Path) -> None:
    # COLUMNS too is no width for a pipe (a parent's readline exports it): still nothing cut or wrapped.
    plugins = run(tmp_path, "plugins", COLUMNS="60")
    assert plugins.returncode == 0, plugins.stdout + plugins.stderr
    for package in ("modelmux-provider-azure", "modelmux-provider-bedrock", "modelmux-provider-vertex"):
        assert package in plugins.stdout
    long_id = "organisation-with-a-long-name/" + "a-model-whose-name-is-long-" * 4 + "v1"
    models = run(tmp_path, "models", config=_vllm("http://127.0.0.1:1/v1", **{"[team] assistant": long_id}))
    assert models.returncode == 0, models.stdout + models.stderr
    assert long_id in models.stdout and "[team] assistant" in models.stdout
    assert "…" not in plugins.stdout + models.stdout
