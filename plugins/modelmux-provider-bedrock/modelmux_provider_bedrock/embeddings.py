"""Embeddings on Bedrock through InvokeModel (``/model/{id}/invoke``): Amazon Titan Text and Cohere Embed.

- **Titan Text Embeddings** (``amazon.titan-embed-text-v2:0``, ``-v1``): one ``inputText`` per
  call; v2 takes ``dimensions`` (256, 512 or 1024) and ``normalize`` (default true, the model's
  ``options`` may turn it off); the answer's ``inputTextTokenCount`` is the usage.
- **Cohere Embed v3** (``cohere.embed-english-v3``, ``cohere.embed-multilingual-v3``): up to
  96 ``texts`` per call with an ``input_type`` (``search_document`` unless the model's
  ``options`` say otherwise) and an optional ``truncate``; 1024 dimensions only. Its usage
  is Bedrock's ``x-amzn-bedrock-input-token-count`` header (an estimate when absent).

Inputs are cut into calls, sent at most ``embedding_concurrency`` at a time, and answered in
input order; the gateway encodes ``base64`` from the floats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
    estimate_tokens,
    gather_bounded,
    upstream_errors,
)

if TYPE_CHECKING:
    from modelmux_provider_bedrock.provider import BedrockProvider

TITAN_V2_DIMENSIONS = (256, 512, 1024)
COHERE_DIMENSIONS = 1024
COHERE_BATCH = 96
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
COHERE_TRUNCATE = ("NONE", "START", "END")
TOKEN_HEADER = "x-amzn-bedrock-input-token-count"


def embedding_family(model: str) -> str | None:
    """ "titan", "cohere" or None (not an embedding model this provider knows), from the model id or ARN."""
    name = model.rsplit("/", 1)[-1]
    if "titan-embed-text" in name:
        return "titan"
    if "cohere.embed-" in name:
        return "cohere"
    return None


def _invalid(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code="invalid_value")


def _titan_payloads(request: UpstreamRequest, texts: list[str]) -> list[dict[str, Any]]:
    v2 = "v2" in request.model
    extra: dict[str, Any] = {}
    dimensions = request.body.get("dimensions")
    if dimensions is not None:
        allowed = TITAN_V2_DIMENSIONS if v2 else (1536,)
        if dimensions not in allowed:
            raise _invalid(
                f"Invalid value for 'dimensions': {dimensions}; {request.model} makes "
                f"{', '.join(map(str, allowed))} dimensions. Fix: use one of those, or leave dimensions out.",
                "dimensions",
            )
        if v2:
            extra["dimensions"] = dimensions
    if v2:
        normalize = request.options.get("normalize", True)
        if not isinstance(normalize, bool):
            raise _invalid(
                f"models.{request.public_model}.options.normalize: {normalize!r} is not true or false.", "model"
            )
        extra["normalize"] = normalize
    return [{"inputText": text, **extra} for text in texts]


def _cohere_payloads(request: UpstreamRequest, texts: list[str]) -> list[dict[str, Any]]:
    dimensions = request.body.get("dimensions")
    if dimensions is not None and dimensions != COHERE_DIMENSIONS:
        raise _invalid(
            f"Invalid value for 'dimensions': {dimensions}; {request.model} makes {COHERE_DIMENSIONS} dimensions only. "
            "Fix: leave dimensions out.",
            "dimensions",
        )
    input_type = request.options.get("input_type", "search_document")
    if input_type not in COHERE_INPUT_TYPES:
        raise _invalid(
            f"models.{request.public_model}.options.input_type: {input_type!r} is not a Cohere Embed input type. "
            f"Fix: use one of {', '.join(COHERE_INPUT_TYPES)}.",
            "model",
        )
    base: dict[str, Any] = {"input_type": input_type}
    truncate = request.options.get("truncate")
    if truncate is not None:
        if truncate not in COHERE_TRUNCATE:
            raise _invalid(
                f"models.{request.public_model}.options.truncate: {truncate!r}. Fix: use one of "
                f"{', '.join(COHERE_TRUNCATE)}.",
                "model",
            )
        base["truncate"] = truncate
    return [{"texts": list(batch), **base} for batch in batches(texts, COHERE_BATCH)]


async def embed(provider: BedrockProvider, request: UpstreamRequest, family: str) -> Completion:
    texts = embedding_texts(request, provider.name)
    payloads = _titan_payloads(request, texts) if family == "titan" else _cohere_payloads(request, texts)
    check_embedding_calls(
        provider.settings,
        provider=provider.name,
        model=request.model,
        inputs=len(texts),
        calls=len(payloads),
        per_call=1 if family == "titan" else COHERE_BATCH,
    )
    url = provider.url(request.model, "invoke")

    async def call(payload: dict[str, Any]) -> tuple[list[list[float]], int]:
        resp = await provider._post(url, orjson.dumps(payload), stream=False)
        async with upstream_errors(provider.name):
            try:
                raw = await resp.read()
            finally:
                resp.release()
        texts_sent = [payload["inputText"]] if family == "titan" else payload["texts"]
        return _vectors(provider.name, family, raw, resp.headers, texts_sent)

    results = await gather_bounded(payloads, call, provider.settings.embedding_concurrency)
    vectors = [vector for found, _ in results for vector in found]
    return embedding_response(request, vectors, sum(tokens for _, tokens in results))


def _vectors(
    provider: str, family: str, raw: bytes, headers: Mapping[str, str], texts: Sequence[str]
) -> tuple[list[list[float]], int]:
    try:
        data = orjson.loads(raw)
        if family == "titan":
            vectors = [data["embedding"]]
            tokens = int(data.get("inputTextTokenCount") or 0)
        else:
            found = data["embeddings"]
            vectors = found["float"] if isinstance(found, dict) else found  # by type, or floats
            tokens = 0
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(
            f"provider {provider}: Bedrock answered an unexpected embeddings body ({type(exc).__name__}: {exc})"
        ) from exc
    if len(vectors) != len(texts):
        raise UpstreamError(f"provider {provider}: Bedrock answered {len(vectors)} embeddings for {len(texts)} inputs")
    counted = headers.get(TOKEN_HEADER)
    if counted is not None and counted.isdigit():
        tokens = int(counted)
    elif not tokens:
        tokens = estimate_tokens(texts)
    return vectors, tokens
