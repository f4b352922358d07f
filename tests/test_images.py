"""The host image fetcher against real loopback servers: SSRF guard, limits, types, data: URLs."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from modelmux.errors import InvalidRequestError
from modelmux.images import ImageFetcher, parse_data_url
from modelmux.testing import serve_aiohttp
from modelmux.testing.servers import LoopbackServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def images_server() -> Iterator[LoopbackServer]:
    async def png(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"\0" * 5000, content_type="image/png")

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "image/jpeg"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"\0" * 1000)
        await resp.write_eof()
        return resp

    async def html(_: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    async def missing(_: web.Request) -> web.Response:
        return web.Response(status=404)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def loop(_: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    for path, handler in [
        ("/cat.png", png),
        ("/big.png", big),
        ("/big-chunked.jpg", big_chunked),
        ("/page.html", html),
        ("/missing.png", missing),
        ("/redirect", redirect),
        ("/loop", loop),
        ("/slow.png", slow),
    ]:
        app.router.add_get(path, handler)
    with serve_aiohttp(app) as server:
        yield server


@pytest.fixture
async def allowed() -> AsyncIterator[ImageFetcher]:
    fetcher = ImageFetcher(["127.0.0.1"], max_bytes=2000, timeout_seconds=0.3)
    yield fetcher
    await fetcher.aclose()


@pytest.fixture
async def guarded() -> AsyncIterator[ImageFetcher]:
    fetcher = ImageFetcher()
    yield fetcher
    await fetcher.aclose()


async def refused(fetcher: ImageFetcher, url: str) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        await fetcher.load(url)
    assert info.value.status_code == 400 and info.value.param == "image_url"
    return info.value


async def test_allowed_host_is_fetched(allowed: ImageFetcher, images_server: LoopbackServer) -> None:
    image = await allowed.load(f"{images_server.url}/cat.png")
    assert image.media_type == "image/png" and image.data == PNG
    assert base64.b64decode(image.base64) == PNG


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_loopback_is_refused_unless_allowed(
    guarded: ImageFetcher, images_server: LoopbackServer, host: str
) -> None:
    err = await refused(guarded, f"http://{host}:{images_server.port}/cat.png")
    assert err.code == "image_url_blocked" and "url_fetch_allow" in err.message
    assert not [r for r in images_server.requests if r["path"] == "/cat.png"]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/a.png",
        "http://192.168.1.1/a.png",
        "http://169.254.169.254/computeMetadata/v1/",
        "http://[::1]/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://0.0.0.0/a.png",
    ],
)
async def test_private_and_link_local_literals_are_refused(guarded: ImageFetcher, url: str) -> None:
    assert (await refused(guarded, url)).code == "image_url_blocked"


async def test_other_schemes_and_odd_ip_spellings_are_refused(guarded: ImageFetcher) -> None:
    # 127.0.0.1 spelled as a number or shortened: refused (yarl rejects them before any connection)
    for url in ("file:///etc/passwd", "ftp://example.com/a.png", "gopher://x", "http://2130706433/", "http://127.1/"):
        await refused(guarded, url)


async def test_size_limit(allowed: ImageFetcher, images_server: LoopbackServer) -> None:
    assert (await refused(allowed, f"{images_server.url}/big.png")).code == "image_too_large"
    assert (await refused(allowed, f"{images_server.url}/big-chunked.jpg")).code == "image_too_large"


async def test_wrong_content_type(allowed: ImageFetcher, images_server: LoopbackServer) -> None:
    err = await refused(allowed, f"{images_server.url}/page.html")
    assert err.code == "invalid_image_format" and "text/html" in err.message
    with pytest.raises(InvalidRequestError, match="image/png"):
        await allowed.load(f"{images_server.url}/cat.png", accept=("image/jpeg",))


async def test_http_errors_and_timeouts(allowed: ImageFetcher, images_server: LoopbackServer) -> None:
    assert "HTTP 404" in (await refused(allowed, f"{images_server.url}/missing.png")).message
    assert "could not fetch" in (await refused(allowed, f"{images_server.url}/slow.png")).message
    assert "redirected more than" in (await refused(allowed, f"{images_server.url}/loop")).message


async def test_redirects_are_followed_and_each_hop_checked(
    allowed: ImageFetcher, images_server: LoopbackServer
) -> None:
    image = await allowed.load(f"{images_server.url}/redirect?to=/cat.png")
    assert image.data == PNG
    # an allowed host redirecting to a private address: refused at the second hop
    for target in ("http://169.254.169.254/latest/meta-data/", f"http://localhost:{images_server.port}/cat.png"):
        err = await refused(allowed, f"{images_server.url}/redirect?to={target}")
        assert err.code == "image_url_blocked"
    assert not [r for r in images_server.requests if r["path"] == "/cat.png" and "localhost" in r["headers"]["Host"]]


def test_data_urls() -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert parse_data_url(url).data == PNG
    assert parse_data_url("data:IMAGE/PNG;base64," + base64.b64encode(PNG).decode()).media_type == "image/png"
    with pytest.raises(InvalidRequestError, match="not valid base64"):
        parse_data_url("data:image/png;base64,@@@")
    with pytest.raises(InvalidRequestError, match="malformed"):
        parse_data_url("data:image/png;base64")
    with pytest.raises(InvalidRequestError) as info:
        parse_data_url("data:text/plain;base64,aGk=")
    assert info.value.code == "invalid_image_format"


async def test_load_handles_data_urls_without_network(guarded: ImageFetcher) -> None:
    image = await guarded.load("data:image/gif;base64," + base64.b64encode(b"GIF89a").decode())
    assert image.media_type == "image/gif" and image.data == b"GIF89a"
