"""The host image fetcher against real loopback servers: SSRF guard, limits, types, data: URLs."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from modelmux.errors import InvalidRequestError
from modelmux.images import ImageFetcher, RequestImages, _blocked, image_urls, parse_data_url
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


# --- per-request limits (RequestImages): count, total bytes, each image fetched once, a few at a time


ODD_PIECES = (1, 2, 100, 1001, 4, 1700, 5)
ODD = bytes(i % 251 for i in range(sum(ODD_PIECES)))


@pytest.fixture
def budget_server() -> Iterator[LoopbackServer]:
    """``/sized/NAME?n=BYTES`` (content-length given), ``/chunked/NAME?n=BYTES`` (none declared),
    ``/slow/NAME`` (answers after 0.1 s; counts how many are in flight at once)."""
    state = {"in_flight": 0, "most": 0}

    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * int(request.query.get("n", "1000")), content_type="image/png")

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for _ in range(int(request.query.get("n", "1000")) // 500):
                await resp.write(b"\0" * 500)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the fetcher stopped reading
        return resp

    async def slow(_: web.Request) -> web.Response:
        state["in_flight"] += 1
        state["most"] = max(state["most"], state["in_flight"])
        await asyncio.sleep(0.1)
        state["in_flight"] -= 1
        return web.Response(body=PNG, content_type="image/png")

    async def odd(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        at = 0
        for size in ODD_PIECES:
            await resp.write(ODD[at : at + size])
            await asyncio.sleep(0.001)  # separate reads on the other side
            at += size
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/odd/{name}", odd)
    app.router.add_get("/sized/{name}", sized)
    app.router.add_get("/chunked/{name}", chunked)
    app.router.add_get("/slow/{name}", slow)
    with serve_aiohttp(app) as server:
        server.app["state"] = state  # type: ignore[index]
        yield server


@pytest.fixture
async def limited() -> AsyncIterator[ImageFetcher]:
    fetcher = ImageFetcher(
        ["127.0.0.1"], max_bytes=4000, max_per_request=5, max_total_bytes=10_000, concurrency=2, timeout_seconds=5
    )
    yield fetcher
    await fetcher.aclose()


def paths(server: LoopbackServer, prefix: str) -> list[str]:
    return [r["path"] for r in server.requests if r["path"].startswith(prefix)]


async def budget_error(images: RequestImages, urls: list[str]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        await images.fetch_all(urls)
    assert info.value.status_code == 400
    return info.value


async def test_too_many_images_are_refused_before_any_fetch(
    limited: ImageFetcher, budget_server: LoopbackServer
) -> None:
    urls = [f"{budget_server.url}/sized/{i}.png" for i in range(6)]
    err = await budget_error(limited.for_request(), urls)
    assert err.code == "too_many_images" and err.param == "messages"
    assert "6 image URLs" in err.message and "at most 5" in err.message
    assert "server.images.max_per_request" in err.message
    assert paths(budget_server, "/sized/") == []
    # data: URLs are in the body already: they do not count
    inline = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert len(await limited.for_request().fetch_all(urls[:5] + [inline] * 3)) == 8


async def test_a_declared_size_over_the_budget_is_refused_before_reading(
    limited: ImageFetcher, budget_server: LoopbackServer
) -> None:
    urls = [f"{budget_server.url}/sized/{i}.png?n=3500" for i in range(4)]  # 14,000 bytes > 10,000
    err = await budget_error(limited.for_request(), urls)
    assert err.code == "images_too_large" and err.param == "messages"
    assert "more than 10000 bytes" in err.message and "server.images.max_total_bytes" in err.message
    assert len(paths(budget_server, "/sized/")) <= 4


async def test_bytes_are_counted_while_reading_when_no_size_is_declared(
    limited: ImageFetcher, budget_server: LoopbackServer
) -> None:
    urls = [f"{budget_server.url}/chunked/{i}.png?n=3500" for i in range(4)]
    assert (await budget_error(limited.for_request(), urls)).code == "images_too_large"
    # each within the per-image limit, counted while reading too
    err = await budget_error(limited.for_request(), [f"{budget_server.url}/chunked/big.png?n=5000"])
    assert err.code == "image_too_large" and "server.images.max_bytes" in err.message


async def test_an_image_used_twice_is_fetched_once_and_counted_twice(
    limited: ImageFetcher, budget_server: LoopbackServer
) -> None:
    url = f"{budget_server.url}/sized/twice.png?n=3000"
    images = limited.for_request()
    got = await images.fetch_all([url, url, url])  # 9,000 bytes: within the budget
    assert [i.size for i in got] == [3000, 3000, 3000] and got[0] is got[1]
    assert len(paths(budget_server, "/sized/twice.png")) == 1
    # the same request translated again (a retry, a fallback): nothing is fetched again
    assert await images.fetch_all([url, url, url]) == got
    assert len(paths(budget_server, "/sized/twice.png")) == 1
    # four uses are 12,000 bytes: refused, although fetched once
    assert (await budget_error(images, [url] * 4)).code == "images_too_large"
    assert len(paths(budget_server, "/sized/twice.png")) == 1


async def test_images_are_fetched_a_few_at_a_time(limited: ImageFetcher, budget_server: LoopbackServer) -> None:
    urls = [f"{budget_server.url}/slow/{i}.png" for i in range(5)]
    got = await limited.for_request().fetch_all(urls)
    assert [i.data for i in got] == [PNG] * 5
    assert budget_server.app["state"]["most"] == 2  # type: ignore[index]


async def test_prefetch_reads_the_image_urls_of_chat_messages(
    limited: ImageFetcher, budget_server: LoopbackServer
) -> None:
    url = f"{budget_server.url}/sized/chat.png?n=10"
    messages = [
        {"role": "system", "content": "x"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": url}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": url}, {"type": "image_url"}]},
    ]
    assert image_urls(messages) == [url, url]
    images = limited.for_request()
    await images.prefetch(messages)
    assert (await images.load(url)).size == 10
    assert len(paths(budget_server, "/sized/chat.png")) == 1


def test_a_base64_data_url_is_kept_as_sent() -> None:
    payload = base64.b64encode(PNG).decode()
    image = parse_data_url("data:image/png;base64," + payload)
    assert image.base64 == payload and image.size == len(PNG)
    assert parse_data_url("data:image/png,%89PNG").data == b"\x89PNG"


async def test_fetched_images_are_base64_encoded_as_they_arrive(
    limited: ImageFetcher, budget_server: LoopbackServer
) -> None:
    """Pieces of any length, encoded as they come, give the same text as encoding the whole body."""
    image = await limited.for_request().load(f"{budget_server.url}/odd/pieces.png")
    assert image.size == len(ODD) and image.base64 == base64.b64encode(ODD).decode()


# --- IPv4 addresses inside IPv6 ones


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("64:ff9b::7f00:1", True),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", False),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::808:808", True),  # local-use NAT64 (RFC 8215): the operator's own network
        ("2002:7f00:1::", True),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", True),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", False),  # 6to4 of 8.8.8.8
        ("::127.0.0.1", True),  # IPv4-compatible
        ("::10.1.2.3", True),
        ("::8.8.8.8", False),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped
        ("::ffff:8.8.8.8", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", True),  # Teredo
        ("2606:4700:4700::1111", False),
        ("::1", True),
        ("::", True),
    ],
)
def test_ipv4_inside_ipv6_is_checked(address: str, blocked: bool) -> None:
    assert _blocked(address) is blocked


@pytest.mark.parametrize("host", ["[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::127.0.0.1]", "[::a9fe:a9fe]"])
async def test_embedded_loopback_literals_are_refused(guarded: ImageFetcher, host: str) -> None:
    assert (await refused(guarded, f"http://{host}/a.png")).code == "image_url_blocked"
