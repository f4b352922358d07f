"""Google's text embedding models on Vertex AI: ``publishers/google/models/{model}:predict``.

One ``:predict`` call takes ``instances[].content`` (and ``task_type``) and
``parameters.outputDimensionality`` / ``autoTruncate``; it answers
``predictions[].embeddings.values`` with ``statistics.token_count``. A request's inputs are
cut into batches of the model's per-call limit (one for ``gemini-embedding-*``, 250 for the
``text-embedding-*`` models), sent at most ``embedding_concurrency`` at a time, and answered
in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from modelmux.plugin import (
    Completion,
    InvalidRequestError,
    UpstreamError,
    UpstreamRequest,
    batches,
    check_embedding_calls,
    embedding_response,
    embedding_texts,
    gather_bounded,
    upstream_errors,
)

if TYPE_CHECKING:
    from modelmux_provider_vertex.provider import VertexProvider

#: Upstream model ids served by ``:predict`` as text embeddings (Google's publisher models).
EMBEDDING_PREFIXES = (
    "text-embedding-",
    "text-multilingual-embedding-",
    "gemini-embedding-",
    "textembedding-gecko",
)
#: Instances per ``:predict`` call (Vertex AI's limits).
TEXT_EMBEDDING_BATCH = 250
GEMINI_EMBEDDING_BATCH = 1
TASK_TYPES = (
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
)


def is_embedding_model(model: str) -> bool:
    return model.startswith(EMBEDDING_PREFIXES)


def batch_size(model: str) -> int:
    return GEMINI_EMBEDDING_BATCH if model.startswith("gemini-embedding-") else TEXT_EMBEDDING_BATCH


def _options(request: UpstreamRequest) -> tuple[str | None, bool | None]:
    """``task_type`` and ``auto_truncate`` from the model's ``options`` (checked: a typo is a 400 naming the key)."""
    task = request.options.get("task_type")
    if task is not None:
        task = str(task).upper()
        if task not in TASK_TYPES:
            raise InvalidRequestError(
                f"models.{request.public_model}.options.task_type: {request.options['task_type']!r} is not a "
                f"Vertex AI task type. Fix: use one of {', '.join(TASK_TYPES)}.",
                param="model",
                code="invalid_value",
            )
    truncate = request.options.get("auto_truncate")
    if truncate is not None and not isinstance(truncate, bool):
        raise InvalidRequestError(
            f"models.{request.public_model}.options.auto_truncate: {truncate!r} is not true or false.",
            param="model",
            code="invalid_value",
        )
    return task, truncate


def predict_url(provider: VertexProvider, model: str) -> str:
    return f"{provider.location_url()}/publishers/google/models/{quote(model, safe='@')}:predict"


async def embed(provider: VertexProvider, request: UpstreamRequest) -> Completion:
    texts = embedding_texts(request, provider.name)
    task, truncate = _options(request)
    size = batch_size(request.model)
    cut = batches(texts, size)
    check_embedding_calls(
        provider.settings, provider=provider.name, model=request.model, inputs=len(texts), calls=len(cut), per_call=size
    )
    parameters: dict[str, Any] = {}
    if request.body.get("dimensions") is not None:
        parameters["outputDimensionality"] = request.body["dimensions"]
    if truncate is not None:
        parameters["autoTruncate"] = truncate
    await provider.auth.ensure_loaded()
    url = predict_url(provider, request.model)
    timeout = provider._timeouts[False]

    async def call(batch: Sequence[str]) -> tuple[list[list[float]], int]:
        instances = [{"content": text, "task_type": task} if task else {"content": text} for text in batch]
        payload: dict[str, Any] = {"instances": instances}
        if parameters:
            payload["parameters"] = parameters
        headers = await provider.auth.headers()
        headers["content-type"] = "application/json"
        async with upstream_errors(provider.name):
            async with provider.host.http.post(
                url, data=orjson.dumps(payload), headers=headers, timeout=timeout
            ) as resp:
                raw = await resp.read()
        if resp.status != 200:
            raise provider._error(resp.status, raw, resp.headers, request.model)
        return _vectors(provider.name, raw, len(batch))

    results = await gather_bounded(cut, call, provider.settings.embedding_concurrency)
    vectors = [vector for found, _ in results for vector in found]
    return embedding_response(request, vectors, sum(tokens for _, tokens in results))


def _vectors(provider: str, raw: bytes, expected: int) -> tuple[list[list[float]], int]:
    try:
        predictions = orjson.loads(raw)["predictions"]
        vectors = [p["embeddings"]["values"] for p in predictions]
        tokens = sum(int(p["embeddings"].get("statistics", {}).get("token_count", 0)) for p in predictions)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(
            f"provider {provider}: Vertex AI answered an unexpected embeddings body ({type(exc).__name__}: {exc})"
        ) from exc
    if len(vectors) != expected:
        raise UpstreamError(f"provider {provider}: Vertex AI answered {len(vectors)} embeddings for {expected} inputs")
    return vectors, tokens
