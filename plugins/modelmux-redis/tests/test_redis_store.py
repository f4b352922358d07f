"""The Redis store against the real Redis server: contract suites, TTLs, prefixes,
passwords, processes sharing counters, and clear errors when Redis is not there."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
from modelmux_redis import RedisSettings, RedisStore, RedisStoreError
from pydantic import ValidationError

from modelmux.plugin import StoreSettings
from modelmux.testing import CacheContract, ConfigError, StateStoreContract, free_port, load_config


class TestRedisStateStore(StateStoreContract):
    @pytest.fixture
    def store_config(self, redis_url: str, key_prefix: str) -> dict[str, Any]:
        return {"backend": "redis", "url": redis_url, "key_prefix": key_prefix, "ttl_seconds": 60}


class TestRedisCache(CacheContract):
    @pytest.fixture
    def cache_config(self, redis_url: str, key_prefix: str) -> dict[str, Any]:
        return {"backend": "redis", "url": redis_url, "key_prefix": key_prefix, "ttl_seconds": 60}


@pytest.fixture
async def state(redis_url: str, key_prefix: str) -> AsyncIterator[RedisStore]:
    s = RedisStore(RedisSettings(url=redis_url, key_prefix=key_prefix, ttl_seconds=120))
    yield s
    await s.aclose()


def test_settings_subclass_the_host_model_with_documented_defaults() -> None:
    s = RedisSettings()
    assert isinstance(s, StoreSettings)
    assert (s.url, s.key_prefix, s.namespace) == ("redis://127.0.0.1:6379/0", "modelmux:", "state")
    assert s.prefix == "modelmux:state:"
    assert RedisSettings(namespace="cache").prefix == "modelmux:cache:"


async def test_keys_carry_prefix_and_namespace_and_state_and_cache_do_not_clash(
    redis_url: str, key_prefix: str, raw_redis: redis.Redis
) -> None:
    state = RedisStore(RedisSettings(url=redis_url, key_prefix=key_prefix))
    cache = RedisStore(RedisSettings(url=redis_url, key_prefix=key_prefix, namespace="cache"))
    try:
        await state.set("k", b"from-state")
        await cache.set("k", b"from-cache")
        assert await state.get("k") == b"from-state"
        assert await cache.get("k") == b"from-cache"
        assert raw_redis.get(f"{key_prefix}state:k") == b"from-state"
        assert raw_redis.get(f"{key_prefix}cache:k") == b"from-cache"
        await cache.delete("k")
        assert await state.get("k") == b"from-state"
    finally:
        await state.aclose()
        await cache.aclose()


async def test_set_uses_the_configured_default_ttl(state: RedisStore, key_prefix: str, raw_redis: redis.Redis) -> None:
    await state.set("default", b"v")
    await state.set("explicit", b"v", ttl=7.5)
    assert 119_000 < raw_redis.pttl(f"{key_prefix}state:default") <= 120_000
    assert 6_000 < raw_redis.pttl(f"{key_prefix}state:explicit") <= 7_500


async def test_incr_sets_the_ttl_on_creation_only(state: RedisStore, key_prefix: str, raw_redis: redis.Redis) -> None:
    name = f"{key_prefix}state:rpm"
    assert await state.incr("rpm", 1, ttl=60) == 1
    first = raw_redis.pttl(name)
    assert 50_000 < first <= 60_000
    assert await state.incr("rpm", 1, ttl=3600) == 2  # a later window length does not extend the counter
    assert raw_redis.pttl(name) <= first
    assert await state.incr("rpm", -2) == 0


async def test_incr_without_ttl_uses_the_default(state: RedisStore, key_prefix: str, raw_redis: redis.Redis) -> None:
    assert await state.incr("n") == 1
    assert 110_000 < raw_redis.pttl(f"{key_prefix}state:n") <= 120_000


async def test_password_in_the_url_authenticates(
    acl_user: tuple[str, str], key_prefix: str, raw_redis: redis.Redis
) -> None:
    user, password = acl_user
    good = RedisStore(RedisSettings(url=f"redis://{user}:{password}@127.0.0.1:6379/0", key_prefix=key_prefix))
    bad = RedisStore(RedisSettings(url=f"redis://{user}:wrong-{password}@127.0.0.1:6379/0", key_prefix=key_prefix))
    try:
        assert await good.ping() is True
        await good.set("authed", b"yes")
        assert raw_redis.get(f"{key_prefix}state:authed") == b"yes"
        with pytest.raises(RedisStoreError) as err:
            await bad.ping()
        assert "AuthenticationError" in err.value.message
        assert password not in err.value.message and "redis://" + user + ":***@" in err.value.message
    finally:
        await good.aclose()
        await bad.aclose()


async def test_password_setting_authenticates_when_the_url_has_none(acl_user: tuple[str, str], key_prefix: str) -> None:
    user, password = acl_user
    store = RedisStore(RedisSettings(url=f"redis://{user}@127.0.0.1:6379/0", password=password, key_prefix=key_prefix))
    try:
        await store.set("k", b"v")
        assert await store.get("k") == b"v"
    finally:
        await store.aclose()


async def test_closed_port_is_a_clear_503_error_not_a_hang() -> None:
    port = free_port()
    store = RedisStore(RedisSettings(url=f"redis://:hunter2-secret@127.0.0.1:{port}/0"))
    try:
        for call in (store.ping(), store.get("k"), store.set("k", b"v"), store.incr("k")):
            with pytest.raises(RedisStoreError) as err:
                await call
            assert err.value.status_code == 503 and err.value.code == "store_unavailable"
            assert f"127.0.0.1:{port}" in err.value.message and "ConnectionError" in err.value.message
            assert "hunter2-secret" not in err.value.message
            assert "Fix:" in err.value.message and "state.url" in err.value.message
    finally:
        await store.aclose()


async def test_silent_server_times_out_instead_of_hanging(silent_port: int) -> None:
    store = RedisStore(
        RedisSettings(
            url=f"redis://127.0.0.1:{silent_port}/0",
            socket_timeout_seconds=0.3,
            socket_connect_timeout_seconds=0.3,
            retries=0,
        )
    )
    try:
        with pytest.raises(RedisStoreError) as err:
            await store.ping()
        assert "Timeout" in err.value.message
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"url": "http://127.0.0.1:6379"}, "is not a Redis URL"),
        ({"url": "127.0.0.1:6379"}, "is not a Redis URL"),
        ({"url": "redis://127.0.0.1:6379/0", "ssl_ca_certs": "/ca.pem"}, "TLS options need a rediss:// url"),
        ({"max_connections": 0}, "max_connections"),
        ({"ssl_cert_reqs": "maybe"}, "ssl_cert_reqs"),
        ({"hostname": "x"}, "hostname"),
    ],
)
def test_bad_settings_are_rejected_with_the_reason(options: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        RedisSettings.model_validate(options)
    assert expected in str(err.value)


def test_bad_url_is_a_config_error_naming_the_key_with_the_password_masked(tmp_path: Path) -> None:
    path = tmp_path / "modelmux.toml"
    path.write_text('[state]\nbackend = "redis"\nurl = "http://user:topsecret@example.com:6379"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "state.url" in text and "is not a Redis URL" in text
    assert "topsecret" not in text and "user:***@" in text


def test_tls_options_reach_the_connection_only_for_rediss() -> None:
    tls = RedisSettings(url="rediss://cache.example.com:6380/0", ssl_ca_certs="/etc/ca.pem", ssl_cert_reqs="none")
    options = tls.client_options()
    assert options["ssl_ca_certs"] == "/etc/ca.pem" and options["ssl_cert_reqs"] == "none"
    store = RedisStore(tls)  # builds the pool without connecting
    kwargs = store._redis.connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == "/etc/ca.pem" and store._redis.connection_pool.connection_class.__name__ == (
        "SSLConnection"
    )
    assert not any(k.startswith("ssl_") for k in RedisSettings().client_options())


async def test_aclose_releases_the_pool(redis_url: str, key_prefix: str, raw_redis: redis.Redis) -> None:
    name = f"mmtest-{key_prefix.split(':')[1]}"
    store = RedisStore(RedisSettings(url=f"{redis_url}?client_name={name}", key_prefix=key_prefix))
    await store.set("k", b"v")

    def ours() -> int:
        return sum(1 for c in raw_redis.client_list() if c.get("name") == name)

    assert ours() >= 1
    await store.aclose()
    # The server drops a closed client asynchronously: wait for it (bounded) rather than race it.
    for _ in range(250):
        if not ours():
            break
        await asyncio.sleep(0.02)
    assert ours() == 0


async def test_processes_share_a_counter_and_a_value(state: RedisStore, redis_url: str, key_prefix: str) -> None:
    """Two writer processes and this one (the reader) see one counter and one value through Redis."""
    code = (
        "import asyncio,sys\n"
        "from modelmux_redis import RedisSettings, RedisStore\n"
        "async def main():\n"
        f"    s = RedisStore(RedisSettings(url={redis_url!r}, key_prefix={key_prefix!r}))\n"
        "    for _ in range(25): await s.incr('shared', 1, ttl=60)\n"
        "    await s.set('doc', b'written by ' + sys.argv[1].encode())\n"
        "    await s.aclose()\n"
        "asyncio.run(main())\n"
    )
    await state.incr("shared", 100, ttl=60)
    writers = [await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(i)) for i in range(2)]
    assert [await asyncio.wait_for(w.wait(), 60) for w in writers] == [0, 0]
    assert await state.incr("shared", 0) == 150
    assert await state.get("doc") in (b"written by 0", b"written by 1")
