"""Validate bodies and stream events against OpenAI's official OpenAPI spec.

The spec (a copy of ``openai-openapi.json``, MIT, with its licence beside it) is
OpenAPI 3.1 but still uses 3.0's ``nullable``; it is rewritten to JSON Schema once.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

SPEC_PATH = Path(__file__).parent / "specs" / "openai-openapi.json"


def _fix(node: Any) -> Any:
    if isinstance(node, dict):
        fixed = {k: _fix(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") is True:
            return {"anyOf": [fixed, {"type": "null"}]}
        return fixed
    if isinstance(node, list):
        return [_fix(v) for v in node]
    return node


@functools.cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = _fix(orjson.loads(SPEC_PATH.read_bytes()))
    return data


@functools.cache
def validator(schema_name: str) -> Draft202012Validator:
    root = dict(spec())
    if schema_name not in root["components"]["schemas"]:
        raise KeyError(f"no schema {schema_name!r} in the OpenAI spec")
    root["$ref"] = f"#/components/schemas/{schema_name}"
    return Draft202012Validator(root)


def validate(schema_name: str, instance: Any) -> None:
    """Raise ``AssertionError`` listing every way ``instance`` breaks the named schema."""
    errors = sorted(validator(schema_name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"- at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}" for e in errors[:10]]
        raise AssertionError(f"not a valid {schema_name}:\n" + "\n".join(lines))
