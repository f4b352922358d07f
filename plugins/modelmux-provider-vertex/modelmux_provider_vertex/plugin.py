"""Hook implementations of modelmux-provider-vertex (entry point ``modelmux: vertex``)."""

from __future__ import annotations

from modelmux import hookimpl
from modelmux.registry import RegisterPreset, RegisterProvider
from modelmux_provider_vertex.presets import render
from modelmux_provider_vertex.provider import factory
from modelmux_provider_vertex.settings import VertexSettings


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register("vertex", factory, VertexSettings)


@hookimpl
def register_config_presets(register: RegisterPreset) -> None:
    register("vertex", "Claude on Vertex AI (detects the gcloud project and ADC)", render)
