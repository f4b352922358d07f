"""What the web UI keeps while the server runs: who may sign in, the recent requests, the traffic history."""

from __future__ import annotations

from loguru import logger

from modelmux.config import ServerSettings
from modelmux.recent import RecentRequests
from modelmux.ui.access import Access
from modelmux.ui.traffic import Traffic


class Console:
    def __init__(self, server: ServerSettings) -> None:
        ui = server.ui
        self.access = Access(server)
        self.recent = RecentRequests(ui.recent_requests)
        self.traffic = Traffic(ui.stats_interval_seconds, ui.stats_window_minutes)

    @property
    def enabled(self) -> bool:
        return self.access.mode in ("admin_key", "loopback")

    def start(self) -> None:
        """In the app's lifespan: the traffic sampler runs only while the UI can be used."""
        mode = self.access.mode
        if mode == "admin_key":
            logger.info("web UI at /ui: sign in with one of server.admin_api_keys")
        elif mode == "loopback":
            logger.info("web UI at /ui: open without a key on loopback (server.admin_api_keys is empty)")
        elif mode == "off":
            logger.info("web UI at /ui is off: {}", self.access.off_message())
        if self.enabled:
            self.traffic.start()

    async def stop(self) -> None:
        await self.traffic.stop()
