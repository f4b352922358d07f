"""The embeddings API (``POST /v1/embeddings``): request checks and what providers build answers with.

The request is checked here before routing (``validate_embeddings``), as OpenAI's
``CreateEmbeddingRequest`` says: ``input`` is a non-empty string, or 1 to 2048 non-empty
strings, one token array, or 1 to 2048 token arrays; ``encoding_format`` ``float`` or
``base64``; ``dimensions`` a positive integer; ``user`` a string. Unknown fields are left
for the provider (a passthrough forwards them; a translating provider ignores them).

Passthrough providers forward the client's body (the upstream encodes ``base64`` itself);
translating providers get the inputs with ``embedding_texts()``/``embedding_inputs()`` and answer with
``embedding_response()``, which builds the OpenAI list and encodes ``base64`` from the
upstream's floats: little-endian float32, the bytes OpenAI's SDKs decode.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from array import array
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from modelmux.errors import InvalidRequestError
from modelmux.provider import Completion, UpstreamRequest

#: OpenAI's bound on the number of inputs of one request.
MAX_INPUTS = 2048
ENCODINGS = ("float", "base64")

T = TypeVar("T")
R = TypeVar("R")


def _invalid(message: str, param: str, code: str = "invalid_value") -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)


def _check_input(value: Any) -> None:
    if isinstance(value, str):
        if not value:
            raise _invalid("Invalid value for 'input': the string is empty. Send the text to embed.", "input")
        return
    if not isinstance(value, list):
        raise _invalid(
            f"Invalid value for 'input': expected a string, an array of strings or an array of token arrays "
            f"(got {type(value).__name__}).",
            "input",
        )
    if not value:
        raise _invalid("Invalid value for 'input': the array is empty. Send at least one input.", "input")
    if len(value) > MAX_INPUTS:
        raise _invalid(
            f"Invalid value for 'input': {len(value)} inputs, at most {MAX_INPUTS} per request. "
            "Split them over several requests.",
            "input",
        )
    first = value[0]
    if type(first) is int:  # one token array
        for i, token in enumerate(value):
            if type(token) is not int:
                raise _invalid(
                    f"Invalid value for 'input[{i}]': a token array holds integers only (got {token!r:.50}).",
                    f"input[{i}]",
                )
        return
    kind = str if isinstance(first, str) else list
    for i, item in enumerate(value):
        if not isinstance(item, kind):
            raise _invalid(
                f"Invalid value for 'input[{i}]': an array of inputs holds strings only or token arrays only "
                f"(got {type(item).__name__} after {kind.__name__}).",
                f"input[{i}]",
            )
        if not item:
            what = "string" if kind is str else "token array"
            raise _invalid(f"Invalid value for 'input[{i}]': the {what} is empty. Remove it or fill it.", f"input[{i}]")
        if kind is list:
            for token in item:
                if type(token) is not int:
                    raise _invalid(
                        f"Invalid value for 'input[{i}]': a token array holds integers only (got {token!r:.50}).",
                        f"input[{i}]",
                    )


def validate_embeddings(body: dict[str, Any]) -> None:
    """A 400 naming the field for anything ``CreateEmbeddingRequest`` refuses (before routing)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        code = "missing_required_parameter" if model is None else "invalid_value"
        raise _invalid("Missing required parameter: 'model' (a model name, see GET /v1/models).", "model", code)
    if "input" not in body or body["input"] is None:
        raise _invalid(
            "Missing required parameter: 'input' (the text to embed).", "input", "missing_required_parameter"
        )
    _check_input(body["input"])
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODINGS:
        raise _invalid(
            f"Invalid value for 'encoding_format': {encoding!r:.50}. Use 'float' or 'base64'.", "encoding_format"
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (type(dimensions) is not int or dimensions < 1):
        raise _invalid(
            f"Invalid value for 'dimensions': {dimensions!r:.50}. Use a positive integer the model supports.",
            "dimensions",
        )
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _invalid(f"Invalid value for 'user': expected a string (got {type(user).__name__}).", "user")
    if body.get("stream"):
        raise _invalid("Invalid value for 'stream': embeddings are not streamed. Remove stream.", "stream")


def embedding_inputs(body: dict[str, Any]) -> list[str] | list[list[int]]:
    """The request's inputs as a list: strings, or token arrays (a validated body)."""
    value = body["input"]
    if isinstance(value, str):
        return [value]
    if type(value[0]) is int:
        return [value]
    return list(value)


def embedding_texts(request: UpstreamRequest, provider: str) -> list[str]:
    """The inputs as strings, for an upstream that takes text only: token arrays are a 400."""
    items = embedding_inputs(request.body)
    if not isinstance(items[0], str):
        raise _invalid(
            f"Invalid value for 'input': provider {provider} (model {request.model}) embeds text, not token arrays. "
            "Fix: send the text as a string or an array of strings.",
            "input",
            "unsupported_value",
        )
    return items


def encode_base64(vector: Sequence[float]) -> str:
    """OpenAI's ``base64`` form of one vector: its little-endian float32 bytes, base64-encoded.

    ``array`` converts the whole list in C (no per-float Python loop)."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_base64(value: str) -> list[float]:
    """The inverse of ``encode_base64`` (for tests and clients)."""
    packed = array("f")
    packed.frombytes(base64.b64decode(value))
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()


def embedding_response(request: UpstreamRequest, vectors: Sequence[Sequence[float]], prompt_tokens: int) -> Completion:
    """The OpenAI ``CreateEmbeddingResponse`` for ``vectors`` (in input order), honouring ``encoding_format``."""
    b64 = request.body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": i, "embedding": encode_base64(v) if b64 else v} for i, v in enumerate(vectors)
    ]
    return Completion(
        data={
            "object": "list",
            "data": data,
            "model": request.public_model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


def estimate_tokens(items: Sequence[str]) -> int:
    """A token count for an upstream that reports none: about four characters a token (at least one each)."""
    return sum(max(1, (len(text) + 3) // 4) for text in items)


def batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into consecutive batches of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class EmbeddingCallSettings(BaseModel):
    """The settings of a provider that cuts one embeddings request into several upstream calls: a
    mixin of its settings model, ``class MySettings(ProviderSettings, EmbeddingCallSettings)``."""

    embedding_concurrency: int = Field(
        4, ge=1, le=64, description="/v1/embeddings: upstream calls of one request sent at the same time"
    )
    embedding_max_calls: int = Field(
        256,
        ge=1,
        description="/v1/embeddings: most upstream calls one request may need (inputs / the model's per-call "
        "limit); more is a 400 naming this setting",
    )


def check_embedding_calls(
    settings: EmbeddingCallSettings, *, provider: str, model: str, inputs: int, calls: int, per_call: int
) -> None:
    """Before any call: ``inputs`` cut into ``calls`` upstream calls of ``model`` (``per_call`` inputs
    each) is a 400 ``too_many_inputs`` naming ``providers.PROVIDER.embedding_max_calls`` past its limit."""
    limit = settings.embedding_max_calls
    if calls > limit:
        raise InvalidRequestError(
            f"Invalid value for 'input': {inputs} inputs need {calls} calls of {model} "
            f"({per_call} per call) and providers.{provider}.embedding_max_calls allows {limit}. "
            "Fix: send fewer inputs per request, or raise the setting.",
            param="input",
            code="too_many_inputs",
        )


async def gather_bounded(calls: Sequence[T], run: Callable[[T], Awaitable[R]], limit: int) -> list[R]:
    """``run`` over ``calls`` with at most ``limit`` at a time; results in the order of ``calls``.

    The first failure cancels the rest (a TaskGroup), so a refused batch fails the request at once."""
    gate = asyncio.Semaphore(max(1, limit))

    async def one(item: T) -> R:
        async with gate:
            return await run(item)

    if len(calls) == 1:
        return [await run(calls[0])]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in calls]
    except BaseExceptionGroup as failed:  # the client gets the first failure, as from one call
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


__all__ = [
    "MAX_INPUTS",
    "batches",
    "decode_base64",
    "embedding_inputs",
    "embedding_response",
    "embedding_texts",
    "encode_base64",
    "estimate_tokens",
    "gather_bounded",
    "validate_embeddings",
]
