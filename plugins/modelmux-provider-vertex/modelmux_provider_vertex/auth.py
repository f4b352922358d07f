"""Google credentials for Vertex AI: loaded once, token cached, refreshed before expiry.

google-auth does the work (service-account JWT flow, gcloud user credentials, the
metadata server). Its calls block, so they run in a thread; one ``asyncio.Lock``
makes concurrent requests share a single refresh. ``Credentials.valid`` turns false
a few minutes before the token expires (google-auth's refresh threshold), so the
token is renewed ahead of time and never fetched per request.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import service_account

from modelmux.plugin import UpstreamAuthError, UpstreamError, UpstreamTimeoutError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ADC_FIX = (
    "set credentials_file to a service-account key, set GOOGLE_APPLICATION_CREDENTIALS, "
    "or run: gcloud auth application-default login"
)
#: The error code of a token endpoint that failed or could not be reached: it counts against the
#: provider (its breaker, /health) like an unreachable upstream, and says it was the token.
TOKEN_ERROR = "upstream_token_error"
#: How long headers of a token google-auth called valid are reused before it is asked again.
#: Far inside its refresh threshold (225 s before expiry), so a reused token is never stale.
RECHECK_SECONDS = 10.0


class _TimedRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with our timeout (its default is 120 s)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def __call__(
        self, url: str, method: str = "GET", body: Any = None, headers: Any = None, timeout: Any = None, **kw: Any
    ) -> Any:
        return super().__call__(url, method, body, headers, timeout=timeout or self._timeout, **kw)  # type: ignore[no-untyped-call]


def load_service_account(path: str) -> tuple[Any, str | None]:
    """Credentials and project id of a service-account key file (a clear ValueError otherwise)."""
    if not os.path.isfile(path):
        raise ValueError(f"credentials_file: {path} does not exist. Fix: point it at a service-account JSON key")
    try:
        creds = service_account.Credentials.from_service_account_file(path, scopes=SCOPES)  # type: ignore[no-untyped-call]
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"credentials_file: {path} is not a service-account JSON key ({exc}). "
            "Fix: download a key with: gcloud iam service-accounts keys create"
        ) from exc
    return creds, creds.project_id


class GoogleAuth:
    def __init__(self, provider: str, credentials_file: str | None, timeout: float) -> None:
        self.provider = provider
        self.credentials_file = credentials_file
        self.timeout = timeout
        self.credentials: Any = None
        #: Project id the credentials name (service-account key, ADC, GOOGLE_CLOUD_PROJECT).
        self.project: str | None = None
        self.refreshes = 0
        self._lock = asyncio.Lock()
        self._headers: dict[str, str] | None = None
        self._headers_until = 0.0
        self._transport = _TimedRequest(timeout)
        if credentials_file:
            self.credentials, self.project = load_service_account(credentials_file)

    @property
    def principal(self) -> str:
        creds = self.credentials
        email = getattr(creds, "service_account_email", None)
        if email and email != "default":
            return str(email)
        account = getattr(creds, "account", None)
        return str(account) if account else "the Application Default Credentials"

    def _load_default(self) -> None:
        creds, project = google.auth.default(scopes=list(SCOPES))
        self.credentials, self.project = creds, project

    async def ensure_loaded(self) -> None:
        """Find credentials (ADC lookup may probe the metadata server: off the event loop)."""
        if self.credentials is not None:
            return
        async with self._lock:
            if self.credentials is not None:
                return
            try:
                await asyncio.wait_for(asyncio.to_thread(self._load_default), self.timeout)
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise UpstreamAuthError(
                    f"provider {self.provider}: no Google credentials found ({exc}). Fix: {ADC_FIX}"
                ) from exc
            except TimeoutError as exc:
                raise UpstreamTimeoutError(
                    f"provider {self.provider}: looking up Google credentials timed out"
                ) from exc

    async def headers(self) -> dict[str, str]:
        """``authorization`` (and ``x-goog-user-project`` for user credentials with a quota project).

        A new dict each call (the caller adds its own headers); O(1) while the token is cached.
        """
        if self._headers is not None and time.monotonic() < self._headers_until:
            return dict(self._headers)
        await self.ensure_loaded()
        creds = self.credentials
        if not creds.valid:
            async with self._lock:
                if not creds.valid:  # another request may have refreshed while we waited
                    await self._refresh(creds)
        headers: dict[str, str] = {}
        creds.apply(headers)
        if creds.valid:  # a token already inside the refresh window is refreshed on every use
            self._headers, self._headers_until = dict(headers), time.monotonic() + RECHECK_SECONDS
        return headers

    async def _refresh(self, creds: Any) -> None:
        try:
            await asyncio.to_thread(creds.refresh, self._transport)
        except google.auth.exceptions.RefreshError as exc:
            if exc.retryable:  # a 5xx or "temporarily_unavailable", after google-auth's own retries
                raise UpstreamError(
                    f"provider {self.provider}: the Google token endpoint failed to issue an access token "
                    f"for {self.principal} ({exc}); Vertex AI itself was not called. Fix: usually transient, "
                    "the next request tries again; check https://status.cloud.google.com",
                    code=TOKEN_ERROR,
                ) from exc
            raise UpstreamAuthError(
                f"provider {self.provider}: could not get an access token for {self.principal}: {exc}. "
                f"Fix: check that the key or login is still valid (not deleted or expired); {ADC_FIX}"
            ) from exc
        except google.auth.exceptions.TransportError as exc:
            raise UpstreamError(
                f"provider {self.provider}: the Google token endpoint could not be reached: {exc}. "
                "Fix: check network access to oauth2.googleapis.com (or the metadata server)",
                code=TOKEN_ERROR,
            ) from exc
        self.refreshes += 1
