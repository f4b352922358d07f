"""ModelMux: one OpenAI-compatible endpoint in front of every model you run."""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("modelmux")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

#: Marks a plugin's hook implementations: ``@hookimpl def register_providers(register): ...``
hookimpl = pluggy.HookimplMarker("modelmux")

__all__ = ["__version__", "hookimpl"]
