"""docs/api/responses.md must say what happens to every Responses API request field of OpenAI's
spec, for translated and for native providers: a new field in the spec fails here until the
table has it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelmux.testing.openapi import spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "api" / "responses.md"


def _properties(schema: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    if "$ref" in schema:
        return _properties(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas)
    names = set(schema.get("properties", {}))
    for part in [*schema.get("allOf", []), *schema.get("anyOf", [])]:
        names |= _properties(part, schemas)
    return names


def _rows() -> list[list[str]]:
    section = DOC.read_text().split("## Request fields", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))] for line in lines]
    header, _separator, *body = cells
    assert header == ["Field", "Translated providers", "Native providers"]
    return body


def test_every_request_field_of_the_spec_has_a_row() -> None:
    schemas = spec()["components"]["schemas"]
    fields = _properties(schemas["CreateResponse"], schemas)
    assert {"model", "input", "previous_response_id", "tools", "text"} <= fields  # the walk found them
    rows = _rows()
    for row in rows:
        assert len(row) == 3 and all(row), f"row {row[0]!r} needs a cell for translated and for native providers"
    # A row names its fields in backticks in the first cell; `text.format` documents `text`.
    named = {name.split(".")[0] for row in rows for name in re.findall(r"`([a-z_.]+)`", row[0])}
    missing = sorted(fields - named)
    assert not missing, f"docs/api/responses.md has no row for request fields {missing}"
