"""The contract suite every gateway tool (``register_tools``) must pass, and a fake embedder.

Subclass ``ToolContract`` in your plugin's tests (name it ``Test...``) and give it a
``tool_config`` fixture (the ``[tools.TYPE]`` table with its ``type``), or a ``tool`` fixture
of your own; with pytest-asyncio in auto mode::

    from modelmux.testing import ToolContract

    class TestSearchContract(ToolContract):
        @pytest.fixture
        def tool_config(self, fake_searx):
            return {"type": "web_search", "url": fake_searx.url}

        @pytest.fixture
        def bad_entries(self):
            return [{"type": "web_search", "search_context_size": "huge"}]

Override ``tool_entry`` (the client's entry in ``tools``) and ``tool_arguments`` (what the model
passes) when the defaults (``{"type": TYPE}``, ``{"query": "contract test"}``) do not fit; a tool
that needs setup before a call finds anything (a vector store with a file) does it in those
fixtures, through ``tool_context`` (its ``embed`` is ``tool_embed``: ``fake_embed`` by default).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from modelmux.errors import InvalidRequestError, ModelMuxError
from modelmux.provider import Check
from modelmux.testing.openapi import validate
from modelmux.tools import Tool, ToolCall, ToolContext, ToolOutput, ToolRoute

#: OpenAI's rule for function names.
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: Item types the OpenAPI spec describes: a tool making one is checked against its schema.
ITEM_SCHEMAS = {"web_search_call": "WebSearchToolCall", "file_search_call": "FileSearchToolCall"}
ANNOTATION_TYPES = {"url_citation", "file_citation", "container_file_citation", "file_path"}
EVERY_INCLUDE = frozenset({"file_search_call.results", "web_search_call.action.sources", "web_search_call.results"})
FAKE_DIMENSIONS = 64


async def fake_embed(model: str, texts: Sequence[str]) -> list[list[float]]:
    """Deterministic embeddings without an upstream: words hashed into 64 dimensions, normalised, so
    texts sharing words are close (cosine) and the same text always gets the same vector (unlike
    ``fake_embedding``, a fake upstream's unrelated vector per input: this one can rank a search)."""
    out = []
    for text in texts:
        vector = [0.0] * FAKE_DIMENSIONS
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            vector[digest[0] % FAKE_DIMENSIONS] += 1.0 if digest[1] % 2 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        out.append([v / norm for v in vector] if norm else [1.0] + [0.0] * (FAKE_DIMENSIONS - 1))
    return out


class ToolContract:
    """What the host relies on from every gateway tool."""

    @pytest.fixture
    def tool_entry(self, tool: Tool) -> dict[str, Any]:
        """The client's entry in ``tools`` that names this tool."""
        return {"type": tool.type}

    @pytest.fixture
    def tool_arguments(self) -> dict[str, Any]:
        """What the model passes when it calls the tool."""
        return {"query": "contract test"}

    @pytest.fixture
    def bad_entries(self) -> list[dict[str, Any]]:
        """Entries in ``tools`` that ``check()`` must refuse (none by default: the check is skipped)."""
        return []

    def host_item(self, tool: Tool, output: ToolOutput) -> dict[str, Any]:
        """The output item the host makes of ``output``."""
        status = "failed" if output.failed else "completed"
        return {"id": "contract_1", "type": tool.item_type, "status": status, **output.item}

    async def _run(
        self, tool: Tool, entry: dict[str, Any], arguments: dict[str, Any], ctx: ToolContext, include: frozenset[str]
    ) -> ToolOutput:
        output = await tool.run(ToolCall("call_contract", arguments, entry, include), ctx)
        assert isinstance(output, ToolOutput), f"run() returned {type(output).__name__}, not ToolOutput"
        return output

    def test_type_aliases_and_item_type(self, tool: Tool) -> None:
        assert isinstance(tool.type, str) and FUNCTION_NAME.match(tool.type), tool.type
        assert isinstance(tool.aliases, tuple) and all(isinstance(a, str) and a for a in tool.aliases)
        assert tool.type not in tool.aliases
        assert isinstance(tool.item_type, str) and tool.item_type, "item_type is empty"

    def test_function_is_a_valid_json_schema_function(
        self, tool: Tool, tool_entry: dict[str, Any], tool_arguments: dict[str, Any]
    ) -> None:
        fn = tool.function(tool_entry)
        assert set(fn) <= {"name", "description", "parameters", "strict"}, sorted(fn)
        assert isinstance(fn.get("name"), str) and FUNCTION_NAME.match(fn["name"]), fn.get("name")
        assert isinstance(fn.get("description"), str) and fn["description"].strip(), "the model needs a description"
        validate("FunctionObject", fn)
        parameters = fn["parameters"]
        Draft202012Validator.check_schema(parameters)
        assert parameters.get("type") == "object", "function parameters must be a JSON-schema object"
        Draft202012Validator(parameters).validate(tool_arguments)  # the arguments the suite calls with fit
        orjson.dumps(fn)

    async def test_check_and_prepare_accept_the_entry(
        self, tool: Tool, tool_entry: dict[str, Any], tool_context: ToolContext
    ) -> None:
        tool.check(tool_entry)
        await tool.prepare(tool_entry, tool_context)

    def test_check_refuses_malformed_entries(self, tool: Tool, bad_entries: list[dict[str, Any]]) -> None:
        if not bad_entries:
            pytest.skip("no bad_entries given")
        for entry in bad_entries:
            with pytest.raises(InvalidRequestError) as refused:
                tool.check(entry)
            assert refused.value.param is None or str(refused.value.param).startswith("tools"), refused.value.param
            assert refused.value.message.strip()

    async def test_run_gives_text_and_a_serialisable_item(
        self, tool: Tool, tool_entry: dict[str, Any], tool_arguments: dict[str, Any], tool_context: ToolContext
    ) -> None:
        output = await self._run(tool, tool_entry, tool_arguments, tool_context, frozenset())
        assert isinstance(output.text, str) and output.text.strip(), "the model needs a text"
        assert isinstance(output.item, dict)
        assert not {"id", "type", "status"} & set(output.item), "id, type and status are the host's to set"
        assert isinstance(output.sources, list) and all(isinstance(s, dict) for s in output.sources)
        assert isinstance(output.failed, bool)
        item = self.host_item(tool, output)
        orjson.dumps(item)
        if tool.item_type in ITEM_SCHEMAS:
            validate(ITEM_SCHEMAS[tool.item_type], item)

    async def test_run_with_every_include_is_still_a_valid_item(
        self, tool: Tool, tool_entry: dict[str, Any], tool_arguments: dict[str, Any], tool_context: ToolContext
    ) -> None:
        output = await self._run(tool, tool_entry, tool_arguments, tool_context, EVERY_INCLUDE)
        if tool.item_type in ITEM_SCHEMAS:
            validate(ITEM_SCHEMAS[tool.item_type], self.host_item(tool, output))

    async def test_odd_arguments_are_an_answer_or_a_gateway_error(
        self, tool: Tool, tool_entry: dict[str, Any], tool_context: ToolContext
    ) -> None:
        """The model may call with anything: a tool answers (``failed=True``) or raises a ``ModelMuxError``."""
        for arguments in ({}, {"query": ""}, {"query": 42, "unexpected": [1]}):
            try:
                output = await self._run(tool, tool_entry, arguments, tool_context, frozenset())
            except ModelMuxError:
                continue
            assert isinstance(output.text, str) and output.text.strip()

    async def test_annotations_point_into_the_text(
        self, tool: Tool, tool_entry: dict[str, Any], tool_arguments: dict[str, Any], tool_context: ToolContext
    ) -> None:
        output = await self._run(tool, tool_entry, tool_arguments, tool_context, EVERY_INCLUDE)
        for text in (output.text, f"As found: {output.text}", ""):
            annotations = tool.annotate(text, [output])
            assert isinstance(annotations, list)
            for annotation in annotations:
                assert annotation.get("type") in ANNOTATION_TYPES, annotation
                validate("Annotation", annotation)
                if "start_index" in annotation:
                    assert 0 <= annotation["start_index"] <= annotation["end_index"] <= len(text)
        assert tool.annotate("", []) == [] or isinstance(tool.annotate("", []), list)

    def test_routes_are_well_formed(self, tool: Tool) -> None:
        seen = set()
        for route in tool.routes():
            assert isinstance(route, ToolRoute)
            assert route.path.startswith("/") and route.path not in seen, route.path
            seen.add(route.path)
            assert route.endpoints, f"{route.path}: no methods"
            for method, endpoint in route.endpoints.items():
                assert method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}, method
                assert callable(endpoint)

    async def test_doctor_gives_checks(self, tool: Tool) -> None:
        checks = await tool.doctor()
        assert isinstance(checks, list) and all(isinstance(c, Check) for c in checks)


__all__ = ["ToolContract", "fake_embed"]
