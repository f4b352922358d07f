"""The one exception tree of ModelMux.

Every failure a client can see is a ``ModelMuxError``: it knows its HTTP status
and its OpenAI error ``type`` / ``code``, and renders as the OpenAI error body
``{"error": {"message", "type", "param", "code"}}``. Plugins map their upstream's
errors into this tree in one place each.

    ModelMuxError                     500 server_error
    ├── InvalidRequestError           400 invalid_request_error
    │   └── UpstreamRequestError      the upstream's own 4xx about the request, passed on
    ├── AuthenticationError           401 (bad or missing client key)
    ├── PermissionDeniedError         403
    ├── NotFoundError                 404
    │   └── ModelNotFoundError        404 model_not_found
    ├── RequestTimeoutError           408 (headers or body too slow)
    ├── ClientClosedRequestError      499 (the client left before its body arrived)
    ├── PayloadTooLargeError          413
    ├── RateLimitError                429 (+ retry-after)
    ├── UpstreamError                 502 (unreachable, auth rejected, bad answer)
    │   └── UpstreamUnavailableError  503 (overloaded / 5xx)
    └── UpstreamTimeoutError          504
"""

from __future__ import annotations

from typing import Any

import orjson


class ModelMuxError(Exception):
    status_code: int = 500
    error_type: str = "server_error"
    default_code: str | None = None
    #: Retrying the same request on the same or another deployment may succeed.
    retryable: bool = False
    #: The deployment itself failed (unreachable, timed out, cut, 5xx, our credentials or token
    #: refused): counts toward its circuit breaker and its provider's health. An answer about the
    #: request (any 4xx, 429 included) never does: the upstream is up and answering.
    deployment_fault: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        if status_code is not None:
            self.status_code = status_code
        self.headers: dict[str, str] = dict(headers or {})
        #: An OpenAI-shaped error body from the upstream, passed to the client as is.
        self.body = body

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return self.body if self.body is not None else orjson.dumps(self.to_dict())


class InvalidRequestError(ModelMuxError):
    status_code = 400
    error_type = "invalid_request_error"


class UpstreamRequestError(InvalidRequestError):
    """The upstream refused the request itself (a 4xx): its status and message reach the client."""


class AuthenticationError(ModelMuxError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(ModelMuxError):
    status_code = 403
    error_type = "invalid_request_error"
    default_code = "permission_denied"


class NotFoundError(ModelMuxError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"


class RequestTimeoutError(ModelMuxError):
    """The client did not send its request headers or body in time (``server.*_timeout_seconds``)."""

    status_code = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class ClientClosedRequestError(ModelMuxError):
    """The client closed the connection before its request body arrived: nobody reads the answer,
    the status is nginx's 499 for the log line and the metrics."""

    status_code = 499
    error_type = "invalid_request_error"
    default_code = "client_closed_request"


class PayloadTooLargeError(ModelMuxError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimitError(ModelMuxError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("retry-after", str(max(1, round(retry_after))))


class UpstreamError(ModelMuxError):
    """The upstream could not be reached, rejected our credentials, or answered nonsense."""

    status_code = 502
    error_type = "api_error"
    default_code = "upstream_error"
    retryable = True
    deployment_fault = True


class UpstreamUnavailableError(UpstreamError):
    """The upstream answered 5xx or said it is overloaded (Anthropic's 529 and ``overloaded_error``
    too: OpenAI clients retry a 503, and a 429 would say the client sent too much)."""

    status_code = 503
    default_code = "upstream_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("retry-after", str(max(1, round(retry_after))))


class UpstreamAuthError(UpstreamError):
    """Our credentials for the upstream were refused, or no token could be had: retrying the
    same deployment will not help, another deployment or a fallback may."""

    default_code = "upstream_auth_error"
    retryable = False


class UpstreamTimeoutError(ModelMuxError):
    status_code = 504
    error_type = "timeout_error"
    default_code = "upstream_timeout"
    retryable = True
    deployment_fault = True


_BY_STATUS: dict[int, type[ModelMuxError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def error_for_status(status: int, message: str, **kw: Any) -> ModelMuxError:
    """An error of the right class for an HTTP status the host itself produces."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = InvalidRequestError if 400 <= status < 500 else ModelMuxError
    return cls(message, status_code=status, **kw)
