"""``[state]`` / ``[cache]`` settings of the ``redis`` backend (no redis import: discovery reads these)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from modelmux.plugin import StoreSettings, redact

SCHEMES = ("redis", "rediss", "unix")
_TLS_FIELDS = ("ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "ssl_password")


class RedisSettings(StoreSettings):
    """On Redis: shared by every worker and replica that uses the same URL and key_prefix (docs/stores.md)."""

    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://[user:password@]host:port/db; rediss:// for TLS; unix:///path.sock?db=0",
    )
    password: str | None = Field(None, description="instead of a password in the URL (the URL's wins)")
    key_prefix: str = Field("modelmux:", description="prepended to every key, then '<namespace>:'")
    max_connections: int = Field(50, gt=0, description="connection pool size (per worker process)")
    pool_timeout_seconds: float = Field(5.0, gt=0, description="wait for a free pooled connection")
    socket_timeout_seconds: float = Field(5.0, gt=0, description="wait for an answer to a command")
    socket_connect_timeout_seconds: float = Field(2.0, gt=0, description="wait for a TCP/TLS connection")
    retries: int = Field(1, ge=0, description="retries of a command after a connection error or timeout")
    health_check_interval_seconds: int = Field(30, ge=0, description="ping idle connections before reuse; 0: never")
    ssl_ca_certs: str | None = Field(None, description="CA bundle file to verify the server (rediss:// only)")
    ssl_ca_path: str | None = Field(None, description="directory of CA certificates (rediss:// only)")
    ssl_certfile: str | None = Field(None, description="client certificate for mutual TLS")
    ssl_keyfile: str | None = Field(None, description="client key for mutual TLS")
    ssl_password: str | None = Field(None, description="password of ssl_keyfile")
    ssl_cert_reqs: Literal["required", "optional", "none"] = Field(
        "required", description="whether the server's certificate must verify (rediss:// only)"
    )
    ssl_check_hostname: bool = Field(True, description="the certificate must name the host (rediss:// only)")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme = urlsplit(url).scheme
        if scheme not in SCHEMES:
            raise ValueError(
                f"{redact(url, 'url')!r} is not a Redis URL. Use redis://host:6379/0, rediss://host:6380/0 (TLS) "
                "or unix:///path/to/redis.sock"
            )
        return url

    @field_validator(*_TLS_FIELDS)
    @classmethod
    def _tls_needs_rediss(cls, value: str | None, info: ValidationInfo) -> str | None:
        url = info.data.get("url")
        if value and url and urlsplit(url).scheme != "rediss":
            raise ValueError(f"TLS options need a rediss:// url, but url is {redact(url, 'url')!r}")
        return value

    @property
    def prefix(self) -> str:
        return f"{self.key_prefix}{self.namespace}:"

    def client_options(self) -> dict[str, Any]:
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff

        options: dict[str, Any] = {
            "max_connections": self.max_connections,
            "timeout": self.pool_timeout_seconds,
            "socket_timeout": self.socket_timeout_seconds,
            "socket_connect_timeout": self.socket_connect_timeout_seconds,
            "health_check_interval": self.health_check_interval_seconds,
            # Short, capped backoff: a dead Redis must surface as an error quickly, not hang readiness.
            "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), self.retries),
        }
        if self.password is not None:
            options["password"] = self.password
        if urlsplit(self.url).scheme == "rediss":  # plain connections reject ssl_* keyword arguments
            options["ssl_cert_reqs"] = self.ssl_cert_reqs
            options["ssl_check_hostname"] = self.ssl_check_hostname
            options.update({f: getattr(self, f) for f in _TLS_FIELDS if getattr(self, f)})
        return options
