"""Bedrock's errors as ModelMux errors, in one place.

Bedrock names its errors: in the ``x-amzn-ErrorType`` header (or ``__type`` in the
body) of an HTTP error, and in ``:exception-type`` of an exception frame inside an
event stream (there lower camel case: ``throttlingException``). The name decides the
class; the HTTP status is the fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelmux.plugin import (
    ModelMuxError,
    NotFoundError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRequestError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    error_from_status,
    retry_after,
)

_AUTH = {
    "accessdeniedexception",
    "unrecognizedclientexception",
    "invalidsignatureexception",
    "incompletesignatureexception",
    "missingauthenticationtokenexception",
    "expiredtokenexception",
    "signaturedoesnotmatch",
}
_RATE = {"throttlingexception", "servicequotaexceededexception", "modelnotreadyexception", "toomanyrequestsexception"}
_INVALID = {"validationexception", "serializationexception"}
_UNAVAILABLE = {"serviceunavailableexception"}
_TIMEOUT = {"modeltimeoutexception"}
_UPSTREAM = {"internalserverexception", "modelstreamerrorexception", "modelerrorexception"}


def error_name(headers: Mapping[str, str], data: Any) -> str:
    """``ValidationException`` from ``ValidationException:http://internal.amazon.com/...`` or ``ns#Name``."""
    raw = headers.get("x-amzn-ErrorType") or headers.get("x-amzn-errortype") or ""
    if not raw and isinstance(data, dict):
        raw = str(data.get("__type") or data.get("code") or "")
    return raw.split(":", 1)[0].rsplit("#", 1)[-1]


def _message(data: Any, fallback: bytes) -> str:
    if isinstance(data, dict):
        for key in ("message", "Message", "errorMessage"):
            if data.get(key):
                return str(data[key])
    return fallback[:500].decode("utf-8", "replace").strip() or "(empty body)"


def by_name(
    provider: str, name: str, message: str, *, auth_fix: str, status: int | None = None, headers: Any = None
) -> ModelMuxError | None:
    """The error for a named Bedrock error, or None when the name is not one we know."""
    key = name.lower()
    label = name or "error"
    if key in _AUTH:
        return UpstreamAuthError(
            f"provider {provider}: Bedrock refused our credentials or permissions ({label}: {message}). "
            f"Fix: {auth_fix}."
        )
    if key in _RATE:
        return RateLimitError(
            f"provider {provider}: Bedrock is throttling ({label}): {message}",
            retry_after=retry_after(headers) if headers is not None else None,
        )
    if key in _INVALID:
        return UpstreamRequestError(f"{message} (Bedrock {label})", status_code=400, code="validation_error")
    if key == "resourcenotfoundexception":
        return NotFoundError(
            f"provider {provider}: {message}. Fix: check the model id (or inference profile id such as "
            "us.anthropic...) and that the model is offered in this region.",
            code="model_not_found",
        )
    if key in _TIMEOUT:
        return UpstreamTimeoutError(f"provider {provider}: the model timed out ({label}): {message}")
    if key in _UNAVAILABLE:
        return UpstreamUnavailableError(f"provider {provider}: Bedrock is unavailable ({label}): {message}")
    if key in _UPSTREAM:
        code = "model_stream_error" if key == "modelstreamerrorexception" else "upstream_error"
        return UpstreamError(f"provider {provider}: Bedrock {label}: {message}", code=code)
    return None


def http_error(provider: str, status: int, body: bytes, headers: Mapping[str, str], *, auth_fix: str) -> ModelMuxError:
    """The error for a non-2xx HTTP answer from Bedrock."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    message = _message(data, body)
    found = by_name(provider, error_name(headers, data), message, auth_fix=auth_fix, status=status, headers=headers)
    if found is not None:
        return found
    return error_from_status(provider, status, orjson.dumps({"message": message}), headers, auth_fix=auth_fix)


def frame_error(provider: str, headers: Mapping[str, Any], payload: bytes, *, auth_fix: str) -> ModelMuxError:
    """The error for an ``exception`` or ``error`` frame of an event stream."""
    if headers.get(":message-type") == "error":
        name = str(headers.get(":error-code") or "error")
        message = str(headers.get(":error-message") or "")
    else:
        name = str(headers.get(":exception-type") or "exception")
        try:
            data = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            data = None
        message = _message(data, payload)
    found = by_name(provider, name, message, auth_fix=auth_fix)
    return found or UpstreamError(f"provider {provider}: Bedrock stream error {name}: {message}")
