"""The template passes the provider contract; keep this when you copy it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from modelmux_provider_template.plugin import TemplateProvider, TemplateSettings

from modelmux.plugin import Host
from modelmux.testing import ProviderContract


class TestTemplateContract(ProviderContract):
    @pytest.fixture
    async def provider(self, host: Host) -> AsyncIterator[TemplateProvider]:
        p = TemplateProvider("t", TemplateSettings(), host)
        yield p
        await p.aclose()
