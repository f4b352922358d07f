"""The web UI at ``/ui`` (docs/ui.md): a single page from ``static/`` and read-only data under ``/ui/api/``.

``Console`` holds its state; ``routes(console)`` its paths; the middleware records recent
requests into ``Console.recent`` (modelmux/recent.py)."""

from modelmux.ui.console import Console
from modelmux.ui.routes import routes

__all__ = ["Console", "routes"]
