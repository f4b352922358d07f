"""Vertex AI error answers -> ModelMux errors.

Vertex answers in two shapes: Anthropic's (``{"type": "error", "error": {"type",
"message"}}``, from the model) and Google's (``{"error": {"code", "message",
"status"}}``, from the platform; sometimes wrapped in a one-element list).
"""

from __future__ import annotations

from typing import Any

import orjson

from modelmux.plugin import (
    ModelMuxError,
    NotFoundError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamRequestError,
    UpstreamUnavailableError,
    error_from_status,
    error_message,
    retry_after,
)

#: Sent as retry-after when Vertex gives none (429 quota, 529 overloaded).
DEFAULT_RETRY_AFTER = 1.0


def _unwrap(body: bytes) -> bytes:
    """Google sometimes wraps the error object in a list: keep the first item."""
    if body[:1] != b"[":
        return body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    return orjson.dumps(data[0]) if isinstance(data, list) and data and isinstance(data[0], dict) else body


def vertex_error(
    provider: str,
    status: int,
    body: bytes,
    headers: Any,
    *,
    model: str,
    project: str,
    region: str,
    principal: str,
) -> ModelMuxError:
    body = _unwrap(body)
    message, data = error_message(body)
    if status == 429:
        return RateLimitError(
            f"provider {provider}: Vertex AI is quota exceeded or rate limited ({status}): {message}",
            retry_after=retry_after(headers) or DEFAULT_RETRY_AFTER,
        )
    if status == 529:  # Anthropic overloaded: a 503, as for every upstream (modelmux.http.error_from_status)
        return UpstreamUnavailableError(
            f"provider {provider}: Vertex AI is overloaded ({status}): {message}",
            retry_after=retry_after(headers) or DEFAULT_RETRY_AFTER,
        )
    if status == 401:
        return UpstreamAuthError(
            f"provider {provider}: Vertex AI rejected the access token of {principal} (401: {message}). "
            "Fix: check credentials_file or the Application Default Credentials "
            "(gcloud auth application-default login), and that the key was not deleted."
        )
    if status == 403:
        return UpstreamAuthError(
            f"provider {provider}: {principal} may not call Claude in project {project} (403: {message}). "
            f"Fix: grant it roles/aiplatform.user on project {project}, enable the Vertex AI API "
            "(gcloud services enable aiplatform.googleapis.com), and enable the Claude model in Model Garden."
        )
    if status == 404:
        return NotFoundError(
            f"provider {provider}: model {model!r} was not found in project {project}, region {region} "
            f"({message}). Fix: check the model id (with its @version, e.g. claude-sonnet-4-5@20250929), "
            f'that it is enabled in Model Garden, and that region {region!r} offers it (or use region = "global").',
            code="model_not_found",
        )
    if 400 <= status < 500:
        # Neither shape is OpenAI's: pass the message and status on, in an OpenAI-shaped body.
        err = data.get("error") if isinstance(data, dict) else None
        code = (err.get("type") or err.get("status")) if isinstance(err, dict) else None
        return UpstreamRequestError(message, status_code=status, code=str(code) if code else None)
    return error_from_status(provider, status, body, headers)
