"""Who may use the web UI, and the headers every UI answer carries (docs/ui.md, "Security").

The admin key travels in a header (``Authorization: Bearer KEY`` or ``api-key: KEY``), never
in a cookie: a page on another site cannot make the browser send it (no CSRF). Without
``server.admin_api_keys`` the UI is open only while the server listens on loopback, where
only this machine reaches it; on any other address it stays off and says how to turn it on.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Literal

from starlette.requests import Request

from modelmux.config import ServerSettings
from modelmux.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from modelmux.gateway import key_id

#: Scripts and styles only from files the gateway serves: no inline script, no eval, no CDN.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
#: Data answers: never kept by the browser or a proxy.
API_HEADERS = {**SECURITY_HEADERS, "cache-control": "no-store"}

Mode = Literal["admin_key", "loopback", "off", "disabled"]

ENABLE_HINT = (
    "Set server.admin_api_keys (or the environment variable MODELMUX_SERVER__ADMIN_API_KEYS, "
    "e.g. '[\"a-long-random-key\"]') and restart, then sign in with that key at /ui."
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Access:
    def __init__(self, server: ServerSettings) -> None:
        self.host = server.host
        #: key -> its non-secret id (the same form as client keys' ids in the log).
        self.keys = {k: key_id(k) for k in server.admin_api_keys if k}
        self.mode: Mode
        if not server.ui.enabled:
            self.mode = "disabled"
        elif self.keys:
            self.mode = "admin_key"
        elif is_loopback(server.host):
            self.mode = "loopback"
        else:
            self.mode = "off"

    def off_message(self) -> str:
        return (
            f"The web UI is off: the server listens on {self.host}, not on loopback, and "
            f"server.admin_api_keys is empty. {ENABLE_HINT}"
        )

    def check(self, request: Request) -> str | None:
        """The admin key's id (None when the UI is open on loopback); raises when not allowed."""
        if self.mode == "disabled":
            raise NotFoundError(
                "The web UI is turned off (server.ui.enabled = false). Set it to true to serve /ui.",
                headers=API_HEADERS,
            )
        if self.mode == "off":
            raise PermissionDeniedError(self.off_message(), code="ui_disabled", headers=API_HEADERS)
        if self.mode == "loopback":
            return None
        key = _header_key(request)
        if key is None:
            raise AuthenticationError(
                "Missing admin key. Send one of server.admin_api_keys as 'Authorization: Bearer KEY' "
                "(the web UI at /ui does this once you sign in).",
                headers=API_HEADERS,
            )
        for known, kid in self.keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                return kid
        raise AuthenticationError(
            "Incorrect admin key. Use one of the keys in server.admin_api_keys (client keys from "
            "server.api_keys do not sign in to the UI).",
            headers=API_HEADERS,
        )


def _header_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = request.headers.get("api-key")
    return key.strip() if key and key.strip() else None
