"""The public plugin API: ``modelmux.plugin`` is all a plugin imports from the host.

The bundled plugins under ``plugins/`` are held to the rule third-party plugins are promised:
their source names no private host module, so the host can change anything else freely.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import click
import httpx
import openai
from pydantic import BaseModel

import modelmux.plugin
from modelmux.plugin import Completion, Provider, ProviderSettings, RegisterProvider, UpstreamRequest, hookimpl
from modelmux.plugins import load_plugins
from modelmux.testing import run_gateway

ROOT = Path(__file__).resolve().parents[2]
#: What a plugin may import from the host.
PUBLIC = {"modelmux.plugin", "modelmux.testing"}


def plugin_sources() -> list[Path]:
    """Every Python file of the bundled plugins, their tests included (build copies left out)."""
    files = []
    for plugin in sorted(ROOT.glob("plugins/*")):
        for path in sorted(plugin.rglob("*.py")):
            parts = path.relative_to(plugin).parts
            if not any(part == "build" or part.endswith(".egg-info") or part.startswith(".") for part in parts):
                files.append(path)
    return files


def host_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``modelmux`` module in the file, wherever it is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, m) for m in modules if m == "modelmux" or m.startswith("modelmux.")]
    return found


def test_the_scan_sees_every_bundled_plugin_and_its_tests() -> None:
    files = plugin_sources()
    plugins = {p.name for p in ROOT.glob("plugins/*") if (p / "pyproject.toml").exists()}
    assert {p.relative_to(ROOT).parts[1] for p in files} == plugins
    assert {p.relative_to(ROOT).parts[1] for p in files if p.name == "conftest.py"} == plugins


def test_bundled_plugins_import_only_the_public_api() -> None:
    private = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in plugin_sources()
        for line, module in host_imports(path)
        if module not in PUBLIC
    ]
    assert not private, "plugins may import only modelmux.plugin and modelmux.testing:\n" + "\n".join(private)


def test_every_exported_name_exists_and_nothing_else_is_public() -> None:
    exported = modelmux.plugin.__all__
    assert len(exported) == len(set(exported)), "a name is listed twice in __all__"
    missing = [name for name in exported if not hasattr(modelmux.plugin, name)]
    assert not missing
    # A name used by the module but not in __all__ is not part of the API: no public strays.
    strays = {
        name
        for name in vars(modelmux.plugin)
        # (pytest's assertion rewriting adds "@py_..." names to the modules of its plugins' packages)
        if name.isidentifier() and not name.startswith("_") and name not in exported and name != "annotations"
    }
    assert not strays, f"public names of modelmux.plugin missing from __all__: {sorted(strays)}"


# --- hooks are called through pluggy, one plugin at a time ---------------------------------------


class Loud(Provider):
    async def chat(self, request: UpstreamRequest) -> Completion:
        text = str(request.body["messages"][-1]["content"]).upper()
        message = {"role": "assistant", "content": text, "refusal": None}
        choice = {"index": 0, "finish_reason": "stop", "logprobs": None, "message": message}
        return Completion(
            data={
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": request.public_model,
                "choices": [choice],
            }
        )


class LoudSettings(ProviderSettings):
    type: str = "loud"


class OlderPlugin:
    """Written against a smaller hook spec: its implementations name fewer arguments than the spec has."""

    __name__ = "older"
    preset_hook_ran = False

    @hookimpl
    def register_config_presets(self) -> None:  # no ``register``: pluggy passes only what is named
        OlderPlugin.preset_hook_ran = True

    @hookimpl
    def register_providers(self, register: RegisterProvider) -> None:
        register("loud", Loud, LoudSettings)  # the class is the factory


class BrokenPlugin:
    """A plugin whose hooks raise: reported, and no other plugin is kept from loading."""

    __name__ = "broken-hooks"

    @hookimpl
    def register_providers(self, register: RegisterProvider) -> None:
        raise RuntimeError("boom in register_providers")

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        raise RuntimeError("boom in register_commands")


class CommandPlugin:
    __name__ = "commands"

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(click.Command("hello-from-plugin", callback=lambda: click.echo("hello")))


def test_an_implementation_may_take_fewer_arguments_than_the_spec() -> None:
    OlderPlugin.preset_hook_ran = False
    loaded = load_plugins(extra=[OlderPlugin()])
    assert OlderPlugin.preset_hook_ran
    assert loaded.errors.get("older") is None
    assert loaded.registry.providers["loud"].factory is Loud


def test_a_hook_that_raises_is_reported_and_the_other_plugins_still_register() -> None:
    loaded = load_plugins(extra=[BrokenPlugin(), OlderPlugin(), CommandPlugin()])
    assert loaded.errors["broken-hooks"] == "register_providers raised RuntimeError: boom in register_providers"
    assert "loud" in loaded.registry.providers and "echo" in loaded.registry.providers
    group = click.Group()
    loaded.call("register_commands", cli=group)
    assert "hello-from-plugin" in group.commands  # the command plugin ran although another raised
    assert loaded.errors["broken-hooks"] == "register_commands raised RuntimeError: boom in register_commands"


def test_the_gateway_serves_a_class_registered_provider_and_reports_the_broken_plugin() -> None:
    config = {"providers": {"l": {"type": "loud"}}, "models": {"loud": {"provider": "l", "model": "x"}}}
    with run_gateway(config, plugins=[BrokenPlugin(), OlderPlugin()]) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        out = client.chat.completions.create(model="loud", messages=[{"role": "user", "content": "hey"}])
        assert out.choices[0].message.content == "HEY"
        health = httpx.get(f"{gw.root}/health").json()
    assert (
        health["plugin_errors"]["broken-hooks"] == "register_providers raised RuntimeError: boom in register_providers"
    )
    assert health["providers"]["l"]["status"] == "ok"


# --- docs/plugins.md documents exactly the exported names, with every parameter ------------------


def documented_api() -> list[tuple[str, str]]:
    """(name, text in the parentheses) of each ``- `NAME(...)` `` entry of the API section."""
    doc = (ROOT / "docs" / "plugins.md").read_text()
    section = doc.split("## The API: `modelmux.plugin`", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `(\w+)(?:\(([^`]*)\)[^`]*)?`", section, re.MULTILINE)


def test_the_docs_list_exactly_the_exported_names() -> None:
    names = [name for name, _ in documented_api()]
    assert len(names) == len(set(names)), "a name is documented twice"
    exported = set(modelmux.plugin.__all__)
    assert not exported - set(names), f"exported but not in docs/plugins.md: {sorted(exported - set(names))}"
    assert not set(names) - exported, f"in docs/plugins.md but not exported: {sorted(set(names) - exported)}"


def test_the_docs_give_every_parameter_of_each_exported_function_and_class() -> None:
    base = inspect.signature(modelmux.plugin.ModelMuxError)
    for name, params in documented_api():
        obj = getattr(modelmux.plugin, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or (
            inspect.isclass(obj) and issubclass(obj, BaseModel)  # settings: their fields are documented in words
        ):
            continue
        sig = inspect.signature(obj)
        if inspect.isclass(obj) and issubclass(obj, modelmux.plugin.ModelMuxError) and sig == base:
            sig = inspect.Signature([next(iter(base.parameters.values()))])  # "(message, ...)" as ModelMuxError's
        for param in sig.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            assert re.search(rf"\b{param.name}\b", params), (
                f"docs/plugins.md: {name}(...) lacks the parameter {param.name}"
            )


def test_the_pytest_plugin_leaves_the_host_package_as_it_is() -> None:
    """pytest marks the package of a plugin's entry point for assertion rewriting: the host's modules
    would be parsed again at every import, in the gateway's thread too, and parsing in two threads
    at once fails on CPython 3.11. ``modelmux.testing.fixtures`` unmarks the package."""
    import modelmux.cli
    import modelmux.gateway
    import modelmux.testing.contracts

    assert "@py_builtins" not in vars(modelmux.cli) and "@py_builtins" not in vars(modelmux.gateway)
    assert "@py_builtins" in vars(modelmux.testing.contracts)  # the suites' asserts still explain themselves
