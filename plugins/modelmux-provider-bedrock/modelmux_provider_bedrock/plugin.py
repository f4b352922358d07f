"""Hook implementations of the bedrock plugin: the provider type and the config preset.

Discovery imports this module in every ``modelmux`` process, so it stays light:
botocore and the provider are imported when a ``type = "bedrock"`` provider is made
or the preset is rendered. A missing botocore still fails here, where discovery
reports it.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from modelmux.plugin import RegisterPreset, RegisterProvider, hookimpl
from modelmux_provider_bedrock.settings import BedrockSettings

if TYPE_CHECKING:
    from modelmux.plugin import Host
    from modelmux_provider_bedrock.provider import BedrockProvider

if find_spec("botocore") is None:  # not installed: fail now, with import's own error, so discovery reports it
    import botocore  # noqa: F401


def factory(name: str, settings: BedrockSettings, host: Host) -> BedrockProvider:
    from modelmux_provider_bedrock.provider import BedrockProvider

    return BedrockProvider(name, settings, host)


def render_preset(detected: dict[str, Any]) -> str:
    from modelmux_provider_bedrock.preset import detect, render

    return render({**detect(), **detected})


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register("bedrock", factory, BedrockSettings)


@hookimpl
def register_config_presets(register: RegisterPreset) -> None:
    register(
        "bedrock",
        "AWS Bedrock (Converse API); AWS profile and region detected from the environment",
        render_preset,
    )
