"""``/health/ready`` follows an Azure OpenAI resource: its models list answers, or the gateway is not ready."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelmux.testing import run_gateway

API_KEY = "azure-key-123"


def _config(url: str, api_version: str | None, api_key: str = API_KEY) -> dict[str, Any]:
    table: dict[str, Any] = {"type": "azure", "endpoint": url, "api_key": api_key, "max_retries": 0}
    if api_version:
        table["api_version"] = api_version
    return {
        "server": {"ready_check_interval_seconds": 0, "ready_requires_providers": "all"},
        "providers": {"azure": table},
        "models": {"gpt": {"provider": "azure", "model": "gpt-4o"}},
    }


@pytest.mark.parametrize(("api_version", "path"), [("2024-10-21", "/openai/models"), (None, "/openai/v1/models")])
def test_ready_while_the_resource_answers_and_503_when_it_is_down(
    start_fake_azure: Any, api_version: str | None, path: str
) -> None:
    fake = start_fake_azure()
    with run_gateway(_config(fake.url, api_version)) as gw:
        up = httpx.get(f"{gw.root}/health/ready")
        assert up.status_code == 200, up.text
        probe = [r for r in fake.requests if r["path"].split("?")[0] == path][-1]
        assert probe["headers"]["api-key"] == API_KEY
        assert ("api-version=" in probe["path"]) == (api_version is not None)
        assert not any("chat/completions" in r["path"] for r in fake.requests)

        fake.stop()
        down = httpx.get(f"{gw.root}/health/ready")
        assert down.status_code == 503
        assert "cannot connect" in down.json()["problems"]["azure"]


def test_a_wrong_key_is_not_ready(start_fake_azure: Any) -> None:
    fake = start_fake_azure()
    with run_gateway(_config(fake.url, "2024-10-21", api_key="nope")) as gw:
        down = httpx.get(f"{gw.root}/health/ready")
        assert down.status_code == 503
        assert "providers.azure.api_key" in down.json()["problems"]["azure"]
