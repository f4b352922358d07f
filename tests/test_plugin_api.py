"""The public plugin API: ``modelmux.plugin`` is all a plugin imports from the host.

The bundled plugins under ``plugins/`` are held to the rule third-party plugins are promised:
their source names no private host module, so the host can change anything else freely.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modelmux.plugin

ROOT = Path(__file__).resolve().parents[1]
#: What a plugin may import from the host.
PUBLIC = {"modelmux.plugin", "modelmux.testing"}


def plugin_sources() -> list[Path]:
    """Every Python file of the bundled plugins' packages (built copies and egg-info left out)."""
    files = []
    for package in sorted(ROOT.glob("plugins/*/modelmux_*")):
        if package.is_dir() and not package.name.endswith(".egg-info"):
            files += sorted(package.rglob("*.py"))
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


def test_the_scan_sees_every_bundled_plugin() -> None:
    packages = {p.parent.parent.name for p in plugin_sources()}
    assert packages == {p.name for p in ROOT.glob("plugins/*") if (p / "pyproject.toml").exists()}


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
        if not name.startswith("_") and name not in exported and name != "annotations"
    }
    assert not strays, f"public names of modelmux.plugin missing from __all__: {sorted(strays)}"
