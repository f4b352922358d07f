"""Microsoft Entra ID tokens for Azure OpenAI, from azure-identity (the ``entra`` extra).

azure-identity is imported only when a provider uses ``auth = "entra"``, so the
plugin works without it. Its async credential caches tokens and refreshes them
before they expire; we only ask it for one per request.
"""

from __future__ import annotations

from typing import Any

from modelmux.plugin import UpstreamAuthError

INSTALL_HINT = "pip install 'modelmux-provider-azure[entra]'"


class EntraTokens:
    def __init__(self, scope: str, managed_identity_client_id: str | None = None) -> None:
        try:
            from azure.identity.aio import DefaultAzureCredential
        except ImportError as exc:
            raise RuntimeError(f'auth = "entra" needs azure-identity. Fix: {INSTALL_HINT}') from exc
        kwargs: dict[str, Any] = {}
        if managed_identity_client_id:
            kwargs["managed_identity_client_id"] = managed_identity_client_id
        self.scope = scope
        self._credential = DefaultAzureCredential(**kwargs)

    async def token(self, provider: str) -> str:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            access = await self._credential.get_token(self.scope)
        except ClientAuthenticationError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UpstreamAuthError(
                f"provider {provider}: no Microsoft Entra ID token ({first}). Fix: sign in with `az login`, "
                "or run with a managed identity, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET."
            ) from exc
        return str(access.token)

    async def aclose(self) -> None:
        await self._credential.close()
