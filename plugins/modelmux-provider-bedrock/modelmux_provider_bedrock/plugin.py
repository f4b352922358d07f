"""Hook implementations of the bedrock plugin: the provider type and the config preset."""

from __future__ import annotations

from modelmux import hookimpl
from modelmux.registry import RegisterPreset, RegisterProvider
from modelmux_provider_bedrock.preset import detect, render
from modelmux_provider_bedrock.provider import factory
from modelmux_provider_bedrock.settings import BedrockSettings


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register("bedrock", factory, BedrockSettings)


@hookimpl
def register_config_presets(register: RegisterPreset) -> None:
    register(
        "bedrock",
        "AWS Bedrock (Converse API); AWS profile and region detected from the environment",
        lambda detected: render({**detect(), **detected}),
    )
