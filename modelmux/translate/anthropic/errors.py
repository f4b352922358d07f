"""Anthropic error types -> ModelMux errors (stream ``error`` events and error bodies)."""

from __future__ import annotations

from typing import Any

from modelmux.errors import (
    ModelMuxError,
    NotFoundError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRequestError,
    UpstreamUnavailableError,
)

#: Anthropic suggests a short wait when it is overloaded and sends no retry-after itself.
OVERLOADED_RETRY_AFTER = 1.0


def error_type_to_exception(provider: str, kind: str, message: str) -> ModelMuxError:
    """The ModelMux error for an Anthropic ``error.type`` (as in bodies and stream events)."""
    text = f"provider {provider}: {message}"
    if kind == "rate_limit_error":
        return RateLimitError(f"{text} ({kind})", retry_after=OVERLOADED_RETRY_AFTER)
    if kind == "overloaded_error":  # Anthropic's 529: the server is busy, as error_from_status says for 529
        return UpstreamUnavailableError(f"{text} ({kind})", retry_after=OVERLOADED_RETRY_AFTER)
    if kind in ("authentication_error", "permission_error"):
        return UpstreamAuthError(f"{text} ({kind})")
    if kind == "not_found_error":
        return NotFoundError(text)
    if kind in ("invalid_request_error", "request_too_large"):
        return UpstreamRequestError(message, code=kind)
    if kind in ("api_error", "timeout_error"):
        return UpstreamUnavailableError(f"{text} ({kind})")
    return UpstreamError(f"{text} ({kind or 'error'})")


def error_from_event(provider: str, event: dict[str, Any]) -> ModelMuxError:
    """The error for a stream ``{"type": "error", "error": {"type", "message"}}`` event."""
    err = event.get("error")
    if not isinstance(err, dict):
        return UpstreamError(f"provider {provider}: the upstream stream failed: {event}")
    return error_type_to_exception(provider, str(err.get("type") or ""), str(err.get("message") or "stream error"))
