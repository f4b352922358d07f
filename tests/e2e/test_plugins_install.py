"""Real plugin packages, installed from a temporary directory, found through entry points.

Each package is built and installed with pip into its own target directory that the
subprocesses put on PYTHONPATH: the same discovery path as a `pip install` into the
venv, without changing the venv other tests run in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from modelmux.testing import free_port

TINY_PLUGIN = r'''
from modelmux import hookimpl
from modelmux.default_plugins.memory import MemorySettings, MemoryStore
from modelmux.provider import Completion, Provider, ProviderSettings


class ShoutSettings(ProviderSettings):
    suffix: str = "!"


class Shout(Provider):
    async def chat(self, request):
        text = request.body["messages"][-1]["content"].upper() + self.settings.suffix
        return Completion(data={
            "id": "chatcmpl-shout", "object": "chat.completion", "created": 0, "model": request.public_model,
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": text, "refusal": None}}],
        })


@hookimpl
def register_providers(register):
    register("shout", lambda name, settings, host: Shout(name, settings, host), ShoutSettings, aliases=["yell"])


class Tape(MemoryStore):
    """A state store and cache from a plugin (memory-backed, counting its writes)."""

    writes = 0

    async def set(self, key, value, ttl=None):
        Tape.writes += 1
        await super().set(key, value, ttl)


@hookimpl
def register_state_stores(register):
    register("tape", Tape, MemorySettings)


@hookimpl
def register_caches(register):
    register("tape", Tape, MemorySettings)


@hookimpl
def register_config_presets(register):
    register("shout", "an upper-case echo", lambda detected: '[providers.s]\ntype = "yell"\n')


@hookimpl
def register_commands(cli):
    import click

    @cli.command("shout-hello")
    def hello():
        """Say hello loudly."""
        click.echo("HELLO FROM A PLUGIN")
'''


def _package(root: Path, dist: str, ep_name: str, module: str, code: str) -> Path:
    pkg = root / dist
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(code)
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "0.0.1"
            dependencies = []

            [project.entry-points.modelmux]
            {ep_name} = "{module}"
            """
        )
    )
    return pkg


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    target = root / "site"
    good = _package(root, "modelmux-tiny-shout", "shout", "modelmux_tiny_shout", TINY_PLUGIN)
    bad = _package(
        root, "modelmux-tiny-broken", "broken", "modelmux_tiny_broken", "raise RuntimeError('boom at import')\n"
    )
    uv = Path(sys.executable).with_name("uv")
    installer = (
        [str(uv), "pip", "install", "--python", sys.executable]
        if uv.exists()
        else [sys.executable, "-m", "pip", "install", "-q"]
    )
    subprocess.run(
        [*installer, "--no-deps", "--target", str(target), str(good), str(bad)], check=True, capture_output=True
    )
    return target


def _env(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMUX_")}
    env["PYTHONPATH"] = str(site)
    env["COLUMNS"] = "250"
    env.update(extra)
    return env


def _modelmux(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmux", *args], env=_env(site, **env), capture_output=True, text=True, timeout=60
    )


def test_plugins_lists_the_installed_plugin_and_the_broken_one(site: Path) -> None:
    out = _modelmux(site, "plugins")
    assert "shout" in out.stdout and "modelmux-tiny-shout" in out.stdout and "provider shout" in out.stdout
    assert "state store tape" in out.stdout and "cache tape" in out.stdout
    assert "broken" in out.stdout and "boom at import" in out.stdout
    assert out.returncode == 1  # a load error is a failure for scripts


def test_plugin_commands_presets_and_aliases(site: Path, tmp_path: Path) -> None:
    assert _modelmux(site, "shout-hello").stdout.strip() == "HELLO FROM A PLUGIN"
    out = tmp_path / "shout.toml"
    init = _modelmux(site, "config", "init", "--preset", "shout", "--non-interactive", "--output", str(out))
    assert init.returncode == 0, init.stderr
    check = _modelmux(site, "config", "validate", "--config", str(out), MODELMUX_DISABLE_PLUGINS="broken")
    assert check.returncode == 0, check.stderr


def test_disable_and_load_only(site: Path) -> None:
    disabled = _modelmux(site, "plugins", MODELMUX_DISABLE_PLUGINS="broken")
    assert disabled.returncode == 0 and "boom" not in disabled.stdout and "shout" in disabled.stdout
    only = _modelmux(site, "plugins", MODELMUX_LOAD_PLUGINS="broken")
    assert "shout" not in only.stdout and "boom at import" in only.stdout


@pytest.fixture(scope="module")
def served(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cfg = tmp_path_factory.mktemp("cfg") / "modelmux.toml"
    cfg.write_text(
        """
[state]
backend = "tape"

[cache]
backend = "tape"

[providers.loud]
type = "shout"
suffix = "!!"

[models.loud]
provider = "loud"
model = "any"
"""
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelmux", "serve", "--config", str(cfg), "--port", str(port)],
        env=_env(site),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_plugin_provider_serves_while_the_broken_plugin_is_reported(served: str) -> None:
    client = openai.OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)
    out = client.chat.completions.create(model="loud", messages=[{"role": "user", "content": "hey"}])
    assert out.choices[0].message.content == "HEY!!"
    health = httpx.get(f"{served}/health").json()
    assert "boom at import" in health["plugin_errors"]["broken"]
    loud = health["providers"]["loud"]
    assert (loud["type"], loud["status"], loud["error"]) == ("shout", "ok", None)
    assert httpx.get(f"{served}/health/ready").status_code == 200  # the plugin's state store answers
