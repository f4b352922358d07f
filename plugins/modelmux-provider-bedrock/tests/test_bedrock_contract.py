"""The bedrock provider passes the provider contract against the fake Bedrock runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from modelmux_provider_bedrock.provider import BedrockProvider
from modelmux_provider_bedrock.settings import BedrockSettings

from modelmux.plugin import Host
from modelmux.testing import LoopbackServer, ProviderContract


class TestBedrockProvider(ProviderContract):
    upstream_model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

    @pytest.fixture
    async def provider(
        self, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: SimpleNamespace
    ) -> AsyncIterator[BedrockProvider]:
        settings = BedrockSettings(
            type="bedrock",
            region=bedrock_wire.region,
            endpoint_url=fake_bedrock.url,
            aws_access_key_id=bedrock_wire.access_key,
            aws_secret_access_key=bedrock_wire.secret_key,
        )
        p = BedrockProvider("bedrock", settings, host)
        yield p
        await p.aclose()
