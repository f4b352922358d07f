"""Who we are to AWS: region, endpoint, credentials and request signing, all through botocore.

Credentials come from explicit keys in the settings, else botocore's own chain
(environment, shared profile, SSO, credential_process, container and instance
metadata, assumed roles), resolved once and kept: botocore's refreshable
credentials renew themselves before they expire, so every request asks for the
current frozen set. Resolution and refresh may do network I/O (IMDS, STS, SSO), so
they run in a worker thread. A Bedrock API key replaces SigV4 with a bearer token.
"""

from __future__ import annotations

import asyncio
import os

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError

from modelmux.plugin import UpstreamAuthError
from modelmux_provider_bedrock.settings import BedrockSettings

SERVICE = "bedrock"
#: The environment variable AWS SDKs read a Bedrock API key from.
API_KEY_ENV = "AWS_BEARER_TOKEN_BEDROCK"
#: Hashing a body this large is worth a thread hop (big images).
_THREAD_SIGN_BYTES = 256 * 1024


class MissingRegionError(ValueError):
    pass


def resolve_region(settings: BedrockSettings, session: botocore.session.Session, provider: str) -> str:
    region = (
        settings.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or session.get_config_variable("region")  # the profile's region (reads ~/.aws/config, no network)
    )
    if not region:
        raise MissingRegionError(
            f"providers.{provider}.region: missing. Set it, set AWS_REGION, "
            "or run: modelmux config init --preset bedrock"
        )
    return str(region)


def default_endpoint(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://bedrock-runtime.{region}.{suffix}"


class Signer:
    """Adds authentication headers to one Bedrock request."""

    def __init__(self, settings: BedrockSettings, provider: str) -> None:
        self.provider = provider
        self.session = botocore.session.Session(profile=settings.profile)
        self.region = resolve_region(settings, self.session, provider)
        key = settings.api_key.get_secret_value() if settings.api_key else os.environ.get(API_KEY_ENV)
        self.api_key: str | None = key or None
        self._credentials: Credentials | None = None
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            token = settings.aws_session_token.get_secret_value() if settings.aws_session_token else None
            self._credentials = Credentials(
                settings.aws_access_key_id, settings.aws_secret_access_key.get_secret_value(), token, method="config"
            )
        self._lock = asyncio.Lock()

    @property
    def method(self) -> str:
        """How requests are authenticated, for logs and ``doctor`` (never a secret)."""
        if self.api_key:
            return "Bedrock API key (bearer)"
        if self._credentials is not None:
            return f"SigV4, credentials from {self._credentials.method}"
        return "SigV4, AWS credential chain (not resolved yet)"

    def auth_fix(self) -> str:
        if self.api_key:
            return (
                f"check api_key of [providers.{self.provider}] (or {API_KEY_ENV}): a Bedrock API key "
                f"for region {self.region} that has not expired"
            )
        return (
            f"check the AWS credentials of [providers.{self.provider}] (run `modelmux doctor`), that the IAM "
            "identity may call bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream, and that access "
            f"to the model is enabled in the Bedrock console for region {self.region}"
        )

    async def credentials(self) -> Credentials:
        """The resolved (possibly refreshable) credentials; resolving may block, so it runs in a thread."""
        if self._credentials is not None:
            return self._credentials
        async with self._lock:
            if self._credentials is None:
                try:
                    found = await asyncio.to_thread(self.session.get_credentials)
                except BotoCoreError as exc:
                    raise UpstreamAuthError(
                        f"provider {self.provider}: cannot load AWS credentials: {exc}. Fix: {self.auth_fix()}."
                    ) from exc
                if found is None:
                    raise UpstreamAuthError(
                        f"provider {self.provider}: no AWS credentials found. Fix: set AWS_PROFILE (and run "
                        "`aws sso login` for SSO profiles), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                        f"aws_access_key_id/aws_secret_access_key or api_key under [providers.{self.provider}]."
                    )
                self._credentials = found
        return self._credentials

    async def frozen(self) -> ReadOnlyCredentials:
        """The current key set; refreshed (in a thread: STS/SSO/IMDS calls block) when near expiry."""
        creds = await self.credentials()
        try:
            if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
                return await asyncio.to_thread(creds.get_frozen_credentials)
            return creds.get_frozen_credentials()
        except BotoCoreError as exc:
            raise UpstreamAuthError(
                f"provider {self.provider}: cannot refresh AWS credentials: {exc}. Fix: {self.auth_fix()}."
            ) from exc

    async def headers(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` plus authentication for a POST of ``body`` to ``url`` (``url`` exactly as sent)."""
        if self.api_key:
            return {**headers, "Authorization": f"Bearer {self.api_key}"}
        frozen = await self.frozen()
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        auth = SigV4Auth(frozen, SERVICE, self.region)
        if len(body) > _THREAD_SIGN_BYTES:
            await asyncio.to_thread(auth.add_auth, request)
        else:
            auth.add_auth(request)
        return dict(request.headers.items())
