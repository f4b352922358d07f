"""The request bodies and query parameters of the Files and Vector Stores endpoints, validated
as OpenAI does: a 400 ``invalid_request_error`` naming the parameter."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request

from modelmux.plugin import InvalidRequestError
from modelmux_tool_file_search.documents import Chunking
from modelmux_tool_file_search.filters import check_filters

SUPPORTED_PURPOSES = ("assistants", "user_data")

M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaticChunks(_Body):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)


class ChunkingParam(_Body):
    type: Literal["auto", "static"]
    static: StaticChunks | None = None

    def resolve(self, param: str) -> Chunking:
        if self.type == "auto":
            if self.static is not None:
                raise InvalidRequestError(
                    f"Invalid '{param}.static': only a 'static' strategy takes it.", param=f"{param}.static"
                )
            return Chunking()
        if self.static is None:
            raise InvalidRequestError(f"Missing required parameter: '{param}.static'.", param=f"{param}.static")
        size, overlap = self.static.max_chunk_size_tokens, self.static.chunk_overlap_tokens
        if overlap > size // 2:
            raise InvalidRequestError(
                f"Invalid '{param}.static.chunk_overlap_tokens': {overlap} is more than half of "
                f"max_chunk_size_tokens ({size}).",
                param=f"{param}.static.chunk_overlap_tokens",
                code="invalid_value",
            )
        return Chunking(size, overlap)


def chunking_of(param: ChunkingParam | None, name: str = "chunking_strategy") -> Chunking:
    return param.resolve(name) if param is not None else Chunking()


Metadata = dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]]
Attributes = dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)] | bool | float]


def _check_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(value) > 16:
        raise ValueError("at most 16 keys")
    return value


class ExpiresAfter(_Body):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class CreateStore(_Body):
    name: str | None = None
    description: str | None = Field(None, max_length=512)
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingParam | None = None
    metadata: Metadata | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class ModifyStore(_Body):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class AddFile(_Body):
    file_id: str
    chunking_strategy: ChunkingParam | None = None
    attributes: Attributes | None = None

    _attributes = field_validator("attributes")(_check_metadata)


class UpdateAttributes(_Body):
    attributes: Attributes | None

    _attributes = field_validator("attributes")(_check_metadata)


class CreateBatch(_Body):
    file_ids: list[str] | None = Field(None, min_length=1, max_length=2000)
    files: list[AddFile] | None = Field(None, min_length=1, max_length=2000)
    chunking_strategy: ChunkingParam | None = None
    attributes: Attributes | None = None

    _attributes = field_validator("attributes")(_check_metadata)


class RankingOptions(_Body):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: float = Field(0.0, ge=0, le=1)


class Search(_Body):
    query: str | list[str]
    rewrite_query: bool = False
    max_num_results: int = Field(10, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_filters(value, "filters")
        return value


def queries_of(query: str | list[str], param: str = "query") -> list[str]:
    queries = [query] if isinstance(query, str) else list(query)
    if not queries or not all(q.strip() for q in queries):
        raise InvalidRequestError(f"Invalid '{param}': give one or more non-empty query strings.", param=param)
    return queries


async def json_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The body is not valid JSON: {exc}.", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("The body must be a JSON object.", code="invalid_type")
    return parse(model, data)


def parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except InvalidRequestError:
        raise
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidRequestError:
    err = exc.errors()[0]
    # Drop pydantic's union-branch names ("str", "list[str]") from the location.
    loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("str", "float", "bool")))]
    param = ".".join(loc) or None
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, InvalidRequestError):
        return cause
    if err["type"] == "extra_forbidden":
        return InvalidRequestError(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")
    if err["type"] == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    return InvalidRequestError(f"Invalid '{param}': {err['msg']}.", param=param, code="invalid_value")


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidRequestError(
            f"Invalid '{name}': {raw!r}. Expected an integer from {low} to {high}.", param=name, code="invalid_value"
        )
    return value


def choice_param(request: Request, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw not in choices:
        raise InvalidRequestError(
            f"Invalid '{name}': {raw!r}. Expected one of: {', '.join(choices)}.", param=name, code="invalid_value"
        )
    return raw
