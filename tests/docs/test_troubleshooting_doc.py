"""docs/troubleshooting.md must have an entry for everything ModelMux can print when something
is wrong: a new error message, error code or doctor check fails here until the page explains it.

What counts, found in the source of the host and of every installed plugin (located through the
plugin registry) by reading its syntax tree:

- messages: the first argument of every call of a ``ModelMuxError`` subclass (or of a helper that
  builds one from its first argument), of ``ConfigError``, of exceptions raised in validators and
  factories (``ValueError``, ...), of ``problems.append`` (configuration errors), of the CLI's
  ``_fail``, of ``logger.warning/error/critical``, and strings assigned to ``msg``/``message``;
- error codes: every ``code=`` string and every error class's ``error_type`` / ``default_code``;
- doctor checks: the name of every ``Check(...)``.

A message's entry is its head: the text up to and including its first run of three or more
literal words, placeholders matching any text (the page writes them as NAME, HOST, ...). So the
page quotes how each message starts, as a user would search for it, without copying every fix.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import modelmux
from modelmux.errors import ModelMuxError
from modelmux.plugins import load_plugins

DOC = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"
#: Exceptions that report a bug in a plugin or in ModelMux to its author, not to a user.
PROGRAMMING_ERRORS = {"TypeError", "NotImplementedError", "AssertionError", "KeyError", "SystemExit"}
LOG_LEVELS = {"warning", "error", "critical", "exception"}
_HOLE = "\x00"


@dataclass(frozen=True)
class Found:
    kind: str  # message | check
    text: str  # the template, placeholders as _HOLE
    where: str  # file:line

    @property
    def shown(self) -> str:
        return self.text.replace(_HOLE, "{...}")


def _all_subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def _roots() -> tuple[list[Path], set[type[ModelMuxError]]]:
    """The source directories of the host and of every loaded plugin, and every error class."""
    plugins = load_plugins()
    roots = {Path(modelmux.__file__).parent}
    for plugin in plugins.manager.get_plugins():
        if isinstance(plugin, ModuleType):
            top = sys.modules[plugin.__name__.split(".")[0]]
            if top.__file__:
                roots.add(Path(top.__file__).parent)
                # Error classes a plugin imports lazily exist only once their module is imported.
                for info in pkgutil.iter_modules(top.__path__, f"{top.__name__}."):
                    if not info.name.endswith("__main__"):
                        importlib.import_module(info.name)
    return sorted(roots), {ModelMuxError, *_all_subclasses(ModelMuxError)}


def _template(node: ast.expr) -> str | None:
    """A string expression with its interpolations as holes, or None when it is not a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else _HOLE for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        if left is not None or right is not None:
            return (left or _HOLE) + (right or _HOLE)
    return None


def _strings(node: ast.expr) -> set[str]:
    """The string values an expression can take: ``"a"``, ``"a" if x else "b"``, ``x or "a"``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    if isinstance(node, ast.BoolOp):
        return set().union(*(_strings(v) for v in node.values))
    return set()


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _helpers(tree: ast.Module, error_names: set[str]) -> set[str]:
    """Functions that build an error from their first parameter: ``_bad(message, param)``."""
    out = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or not fn.args.args:
            continue
        first = fn.args.args[0].arg
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Call)
                and _name(node.func) in error_names
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == first
            ):
                out.add(fn.name)
    return out


def _check_name(call: ast.Call, scope: ast.AST) -> str | None:
    if not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Name):  # name = "credentials found"; ... Check(name, ...)
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == arg.id for t in node.targets):
                return _template(node.value)
        return None
    return _template(arg)


def collect() -> tuple[list[Found], set[str]]:
    roots, classes = _roots()
    error_names = {c.__name__ for c in classes} | {"ConfigError", "error_for_status"}
    codes = {c.error_type for c in classes} | {c.default_code for c in classes if c.default_code}
    found: list[Found] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "testing" in path.relative_to(root).parts:
                continue  # test support: its messages are for test authors
            tree = ast.parse(path.read_text())
            callers = error_names | _helpers(tree, error_names)
            functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            scope_of = {id(n): fn for fn in functions for n in ast.walk(fn)}
            where = f"{path.relative_to(root.parent)}"
            for node in ast.walk(tree):
                text: str | None = None
                kind = "message"
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    if _name(node.exc.func) not in PROGRAMMING_ERRORS and node.exc.args:
                        text = _template(node.exc.args[0])
                elif isinstance(node, ast.Call):
                    name = _name(node.func)
                    for kw in node.keywords:
                        if kw.arg == "code" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                            codes.add(kw.value.value)
                    is_log = (
                        isinstance(node.func, ast.Attribute)
                        and name in LOG_LEVELS
                        and isinstance(node.func.value, ast.Name)
                        and node.func.value.id == "logger"
                    )
                    is_problem = name == "append" and _name(getattr(node.func, "value", node.func)) == "problems"
                    if name == "Check":
                        kind, text = "check", _check_name(node, scope_of.get(id(node), tree))
                    elif (name in callers or is_log or is_problem or name == "_fail") and node.args:
                        text = _template(node.args[0])
                elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id in ("msg", "message") for t in node.targets
                ):
                    text = _template(node.value)
                elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "code" for t in node.targets
                ):
                    codes.update(_strings(node.value))
                elif isinstance(node, ast.FunctionDef):
                    for arg, default in zip(node.args.args[::-1], node.args.defaults[::-1], strict=False):
                        if arg.arg == "code" and isinstance(default, ast.Constant) and isinstance(default.value, str):
                            codes.add(default.value)
                if text is not None:
                    found.append(Found(kind, _loguru_holes(text), f"{where}:{getattr(node, 'lineno', 0)}"))
    return found, codes


def _loguru_holes(text: str) -> str:
    return re.sub(r"\{[^{}]*\}", _HOLE, text)


_EDGE = " \t\n:;,.'\"()[]{}$=`!?-"


HEAD_WORDS = 8


def head(template: str) -> str | None:
    """The start of a message up to its first literal run of three words (at most ``HEAD_WORDS``
    of it); None for a message that is all placeholders (an upstream's own text passed on),
    whose error code covers it."""
    parts = template.split(_HOLE)
    for i, part in enumerate(parts):
        words = part.strip(_EDGE).split()
        if len(words) >= 3:
            start = part[: len(part) - len(part.lstrip(_EDGE))]
            cut = start + " ".join(words[:HEAD_WORDS])
            return _HOLE.join([*parts[:i], cut]).rstrip(_EDGE)
    words_total = sum(len(p.strip(_EDGE).split()) for p in parts)
    return template.rstrip(_EDGE + _HOLE) if words_total >= 2 else None


def pattern(text: str) -> re.Pattern[str]:
    """A regex for ``text`` in the page: holes match a placeholder, whitespace may wrap."""
    pieces = []
    for i, part in enumerate(text.split(_HOLE)):
        if i:
            pieces.append(r"[^`\n]{1,120}?")
        pieces.append(r"\s+".join(re.escape(w) for w in re.split(r"\s+", part)) if part.strip() else re.escape(part))
    return re.compile("".join(pieces))


@pytest.fixture(scope="module")
def collected() -> tuple[list[Found], set[str]]:
    return collect()


def test_the_collector_finds_what_we_know_is_there(collected: tuple[list[Found], set[str]]) -> None:
    found, codes = collected
    texts = {f.shown for f in found}
    assert any("cannot connect to" in t for t in texts)  # host: http.py
    assert any("Vertex AI" in t for t in texts)  # a plugin's messages
    assert any(f.kind == "check" and f.text == "region set" for f in found)  # bedrock's Check(name, ...)
    assert {"model_not_found", "upstream_auth_error", "store_unavailable", "invalid_value"} <= codes


def test_every_message_has_an_entry(collected: tuple[list[Found], set[str]]) -> None:
    doc = DOC.read_text()
    missing = []
    for f in collected[0]:
        if f.kind != "message":
            continue
        start = head(f.text)
        if start is not None and not pattern(start).search(doc):
            missing.append(f"{f.where}: {start.replace(_HOLE, '{...}')!r}")
    assert not missing, "docs/troubleshooting.md has no entry for:\n" + "\n".join(sorted(set(missing)))


def test_every_error_code_and_type_has_an_entry(collected: tuple[list[Found], set[str]]) -> None:
    doc = DOC.read_text()
    missing = sorted(c for c in collected[1] if f"`{c}`" not in doc)
    assert not missing, f"docs/troubleshooting.md does not name the error codes/types {missing}"


def test_every_doctor_check_has_an_entry(collected: tuple[list[Found], set[str]]) -> None:
    doc = DOC.read_text().split("## `modelmux doctor` checks", 1)[-1]
    missing = sorted({f.shown for f in collected[0] if f.kind == "check" and not pattern(f.text).search(doc)})
    assert not missing, f"docs/troubleshooting.md's doctor section does not list the checks {missing}"
