"""Hook implementations: the ``azure`` provider type and the ``azure`` preset."""

from __future__ import annotations

import json
import os
from typing import Any

from modelmux.plugin import RegisterPreset, RegisterProvider, hookimpl
from modelmux_provider_azure.provider import AzureProvider, AzureSettings


def render_preset(detected: dict[str, Any]) -> str:
    endpoint = detected.get("endpoint") or os.environ.get("AZURE_OPENAI_ENDPOINT") or ""
    deployment = detected.get("deployment") or os.environ.get("AZURE_OPENAI_DEPLOYMENT") or "gpt-4o"
    api_version = os.environ.get("AZURE_OPENAI_API_VERSION") or os.environ.get("OPENAI_API_VERSION")
    if endpoint:
        found = "# endpoint from AZURE_OPENAI_ENDPOINT\n"
    else:
        found = "# AZURE_OPENAI_ENDPOINT is not set: put your resource's endpoint below.\n"
        endpoint = "https://RESOURCE.openai.azure.com"
    version_line = (
        f"api_version = {json.dumps(api_version)}"
        if api_version
        else '# api_version = "2024-10-21"  # omitted: the v1 API at /openai/v1/'
    )
    return f"""\
# ModelMux configuration: Azure OpenAI.
{found}[server]
host = "127.0.0.1"
port = 3000

[state]
backend = "disk"

[providers.azure]
type = "azure"
endpoint = {json.dumps(endpoint.rstrip("/"))}
api_key = "${{AZURE_OPENAI_API_KEY}}"
{version_line}
# auth = "entra"   # Microsoft Entra ID instead of a key: pip install 'modelmux-provider-azure[entra]'

[models.{json.dumps(deployment)}]
provider = "azure"
model = {json.dumps(deployment)}   # the Azure deployment name
"""


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register("azure", AzureProvider, AzureSettings)


@hookimpl
def register_config_presets(register: RegisterPreset) -> None:
    register("azure", "Azure OpenAI (reads AZURE_OPENAI_ENDPOINT)", render_preset)
