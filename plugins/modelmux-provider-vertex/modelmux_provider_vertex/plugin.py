"""Hook implementations of modelmux-provider-vertex (entry point ``modelmux: vertex``).

Discovery imports this module in every ``modelmux`` process, so it stays light:
google-auth and the provider are imported when a ``type = "vertex"`` provider is
made. A missing google-auth still fails here, where discovery reports it.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from modelmux.plugin import RegisterPreset, RegisterProvider, hookimpl
from modelmux_provider_vertex.settings import VertexSettings

if TYPE_CHECKING:
    from modelmux.plugin import Host
    from modelmux_provider_vertex.provider import VertexProvider

if find_spec("google.auth") is None:  # not installed: fail now, with import's own error, so discovery reports it
    import google.auth  # noqa: F401


def factory(name: str, settings: VertexSettings, host: Host) -> VertexProvider:
    from modelmux_provider_vertex.provider import factory as make

    return make(name, settings, host)


def render(detected: dict[str, Any]) -> str:
    from modelmux_provider_vertex.presets import render as render_preset

    return render_preset(detected)


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register("vertex", factory, VertexSettings)


@hookimpl
def register_config_presets(register: RegisterPreset) -> None:
    register("vertex", "Claude on Vertex AI (detects the gcloud project and ADC)", render)
