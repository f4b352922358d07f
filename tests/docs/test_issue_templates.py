"""The GitHub issue forms parse and have what GitHub requires, so they do not silently vanish
from the "New issue" page."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TEMPLATES = Path(__file__).resolve().parents[2] / ".github" / "ISSUE_TEMPLATE"
FORMS = ["bug_report.yml", "feature_request.yml", "provider_request.yml"]
TYPES = {"markdown", "textarea", "input", "dropdown", "checkboxes"}


@pytest.mark.parametrize("name", FORMS)
def test_issue_form_is_valid(name: str) -> None:
    form = yaml.safe_load((TEMPLATES / name).read_text())
    assert isinstance(form["name"], str) and form["name"]
    assert isinstance(form["description"], str) and form["description"]
    body = form["body"]
    assert isinstance(body, list) and any(item["type"] != "markdown" for item in body)
    ids = [item["id"] for item in body if "id" in item]
    assert len(ids) == len(set(ids)), f"{name}: duplicate ids"
    for item in body:
        assert item["type"] in TYPES, f"{name}: unknown element type {item['type']!r}"
        attributes = item["attributes"]
        if item["type"] == "markdown":
            assert attributes["value"].strip()
            continue
        assert attributes["label"].strip(), f"{name}: an element without a label"
        if item["type"] in ("dropdown", "checkboxes"):
            assert attributes["options"], f"{name}: {item['id']} has no options"


def test_template_chooser_config() -> None:
    config = yaml.safe_load((TEMPLATES / "config.yml").read_text())
    assert isinstance(config["blank_issues_enabled"], bool)
    assert sorted(p.name for p in TEMPLATES.glob("*.yml")) == sorted([*FORMS, "config.yml"])
