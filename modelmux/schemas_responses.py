"""Validation of Responses API requests (``POST /v1/responses``): a clear 400, nothing more.

Like ``modelmux.schemas`` these models only check the client's dict; the body that
goes on is the client's own. Every field and tool type of the official spec is
accepted: built-in tools and unknown item types pass validation (the translator
decides what an upstream can run), while the parts ModelMux itself reads (messages,
function calls and outputs, function/custom/namespace tools, ``text.format``,
``metadata``) are checked closely.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator

from modelmux.errors import InvalidRequestError
from modelmux.schemas import model_name_problem, validation_error

#: OpenAI's limits for ``metadata``.
METADATA_MAX_KEYS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512
TOOL_NAME = r"^[a-zA-Z0-9_-]+$"


class _Open(BaseModel):
    # strict, as for chat: "false" is not a boolean, "1" not a number (the route reads these values)
    model_config = ConfigDict(extra="allow", strict=True)


# -- content parts -------------------------------------------------------------------------------


class InputText(_Open):
    type: Literal["input_text"]
    text: str


class InputImage(_Open):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class InputFile(_Open):
    type: Literal["input_file"]
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputText(_Open):
    type: Literal["output_text"]
    text: str


class Refusal(_Open):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[InputText | InputImage | InputFile | OutputText | Refusal, Field(discriminator="type")]


# -- input items -----------------------------------------------------------------------------------


class MessageItem(_Open):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]


class FunctionCallItem(_Open):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    namespace: str | None = None


class CallOutputItem(_Open):
    type: Literal["function_call_output", "custom_tool_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[ContentPart]


class CustomCallItem(_Open):
    type: Literal["custom_tool_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: str
    namespace: str | None = None


class ItemReference(_Open):
    type: Literal["item_reference"] | None = None
    id: str = Field(min_length=1)


class OtherItem(_Open):
    """Any other item type of the spec (reasoning, web_search_call, ...): kept, not sent to chat upstreams."""

    type: str


def _item_tag(value: Any) -> str:
    if not isinstance(value, dict):
        return "message"  # lets pydantic report "must be an object"
    kind = value.get("type")
    if kind in (None, "message"):
        return "item_reference" if "role" not in value and "id" in value else "message"
    if kind in ("function_call", "custom_tool_call", "item_reference"):
        return str(kind)
    if kind in ("function_call_output", "custom_tool_call_output"):
        return "call_output"
    return "other"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[CallOutputItem, Tag("call_output")]
    | Annotated[CustomCallItem, Tag("custom_tool_call")]
    | Annotated[ItemReference, Tag("item_reference")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_tag),
]


# -- tools ---------------------------------------------------------------------------------------------


class FunctionTool(_Open):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=128, pattern=TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomTool(_Open):
    type: Literal["custom"]
    name: str = Field(min_length=1, max_length=128, pattern=TOOL_NAME)
    description: str | None = None
    format: dict[str, Any] | None = None


NamespaceMember = Annotated[FunctionTool | CustomTool, Field(discriminator="type")]


class NamespaceTool(_Open):
    type: Literal["namespace"]
    name: str = Field(min_length=1, max_length=64, pattern=TOOL_NAME)
    description: str | None = None
    tools: list[NamespaceMember] = Field(min_length=1)


class BuiltinTool(_Open):
    """web_search, file_search, mcp, code_interpreter, ... (and tool types newer than this code)."""

    type: str = Field(min_length=1)


def _tool_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    return str(kind) if kind in ("function", "custom", "namespace") else "builtin"


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")]
    | Annotated[CustomTool, Tag("custom")]
    | Annotated[NamespaceTool, Tag("namespace")]
    | Annotated[BuiltinTool, Tag("builtin")],
    Discriminator(_tool_tag),
]


# -- the request -----------------------------------------------------------------------------------


class TextFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(None, min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextParam(_Open):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningParam(_Open):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: str | None = None


class ResponsesRequest(_Open):
    model: str = Field(min_length=1)
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    previous_response_id: str | None = Field(None, min_length=1)
    conversation: str | dict[str, Any] | None = None
    store: bool | None = None
    stream: bool | None = None
    background: bool | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    metadata: dict[str, str] | None = None
    reasoning: ReasoningParam | None = None
    user: str | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None

    @field_validator("model")
    @classmethod
    def _printable_model(cls, value: str) -> str:
        problem = model_name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if len(value) > METADATA_MAX_KEYS:
            raise ValueError(f"at most {METADATA_MAX_KEYS} key-value pairs, got {len(value)}")
        for key, item in value.items():
            if len(key) > METADATA_MAX_KEY:
                raise ValueError(f"key {key[:80]!r} is longer than {METADATA_MAX_KEY} characters")
            if len(item) > METADATA_MAX_VALUE:
                raise ValueError(f"the value of {key!r} is longer than {METADATA_MAX_VALUE} characters")
        return value

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(value, str) and value not in ("none", "auto", "required"):
            raise ValueError("must be 'none', 'auto', 'required' or an object")
        if isinstance(value, dict):
            kind = value.get("type")
            if not isinstance(kind, str):
                raise ValueError("an object tool_choice needs a 'type'")
            if kind in ("function", "custom") and not isinstance(value.get("name"), str):
                raise ValueError(f"a {kind} tool_choice needs a 'name'")
            if kind == "allowed_tools" and (
                value.get("mode") not in ("auto", "required") or not isinstance(value.get("tools"), list)
            ):
                raise ValueError("allowed_tools needs 'mode' (auto or required) and a 'tools' list")
        return value


_UNION_TAGS = {
    "message",
    "function_call",
    "call_output",
    "custom_tool_call",
    "item_reference",
    "other",
    "function",
    "custom",
    "namespace",
    "builtin",
    "str",
    "input_text",
    "input_image",
    "input_file",
    "output_text",
    "refusal",
}


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop the union branch names pydantic puts into error locations."""
    return tuple(
        p for p in loc if isinstance(p, int) or (p not in _UNION_TAGS and not p.startswith(("list[", "tagged-union[")))
    )


def validate_responses(body: dict[str, Any]) -> ResponsesRequest:
    try:
        request = ResponsesRequest.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        # a value that fits no branch of a union reports once per branch: show the most specific one
        errors.sort(key=lambda e: -len(e["loc"]))
        cleaned = [{**e, "loc": _clean_loc(e["loc"])} for e in errors]
        raise validation_error(ValidationError.from_exception_data(exc.title, cleaned)) from None  # type: ignore[arg-type]
    if request.conversation is not None and request.previous_response_id is not None:
        raise InvalidRequestError(
            "'previous_response_id' and 'conversation' cannot be used together.", param="conversation"
        )
    if request.conversation is not None:
        raise InvalidRequestError(
            "The Conversations API is not served by ModelMux; chain responses with 'previous_response_id' instead.",
            param="conversation",
        )
    return request
