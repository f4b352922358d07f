"""docs/api-compatibility.md must say, per provider type, what happens to every Chat Completions
request field of OpenAI's spec: a new field in the spec fails here until the table has its row."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelmux.testing.openapi import spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "api-compatibility.md"
COLUMNS = ["Field", "vertex", "openai_compatible / vllm", "azure", "bedrock", "echo"]
#: Rows for fields outside the spec that ModelMux documents anyway.
EXTENSIONS = {"top_k"}


def _properties(schema: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """Every property of a schema, following ``$ref`` and ``allOf`` as the spec composes them."""
    if "$ref" in schema:
        return _properties(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas)
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names |= _properties(part, schemas)
    return names


def _request_table(heading: str = "## Request fields") -> tuple[list[str], list[list[str]]]:
    text = DOC.read_text()
    section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    header, _separator, *body = rows
    return header, body


def _field(cell: str) -> str | None:
    """The top-level field a row is about: "`tool_choice`" -> tool_choice; sub-rows give None."""
    match = re.fullmatch(r"`([a-z_]+)`(?: \(.*\))?", cell)
    return match.group(1) if match else None


def test_the_spec_has_the_request_fields_we_expect() -> None:
    schemas = spec()["components"]["schemas"]
    fields = _properties(schemas["CreateChatCompletionRequest"], schemas)
    assert {"model", "messages", "tools", "temperature", "user", "metadata"} <= fields  # the walk found them


def test_every_request_field_of_the_spec_has_a_row_with_every_provider_column() -> None:
    schemas = spec()["components"]["schemas"]
    fields = _properties(schemas["CreateChatCompletionRequest"], schemas)
    header, rows = _request_table()
    assert header == COLUMNS
    for row in rows:
        assert len(row) == len(COLUMNS) and all(row), f"row {row[0]!r} needs one non-empty cell per column"
    documented = {_field(row[0]) for row in rows} - {None}
    missing = sorted(fields - documented)
    assert not missing, f"docs/api-compatibility.md has no row for request fields {missing}"
    unknown = sorted(documented - fields - EXTENSIONS)
    assert not unknown, f"docs/api-compatibility.md has rows for fields not in the spec: {unknown}"


def test_every_embeddings_request_field_has_a_row_with_every_provider_column() -> None:
    schemas = spec()["components"]["schemas"]
    fields = _properties(schemas["CreateEmbeddingRequest"], schemas)
    assert {"input", "model", "encoding_format", "dimensions", "user"} <= fields
    header, rows = _request_table("### Embeddings request fields")
    assert header == COLUMNS
    for row in rows:
        assert len(row) == len(COLUMNS) and all(row), f"row {row[0]!r} needs one non-empty cell per column"
    documented = {_field(row[0]) for row in rows} - {None}
    assert documented == fields, f"embeddings rows {sorted(documented)} differ from the spec's {sorted(fields)}"
