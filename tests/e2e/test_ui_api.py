"""The web UI's HTTP side (docs/ui.md): admin sign-in, 401s, the security headers, and the data
endpoints under /ui/api/ (recent requests, traffic, configuration) on a real gateway.
The browser side is tests/e2e/test_ui_browser.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from modelmux.testing import RunningGateway, run_gateway
from modelmux.ui.traffic import quantile

ADMIN_KEY = "mm-admin-test-key-7f3a9c"
CLIENT_KEY = "sk-ui-client-key-51c0de"
UPSTREAM_KEY = "sk-ui-upstream-secret-94be11"
API_PATHS = ("/ui/api/session", "/ui/api/overview", "/ui/api/traffic", "/ui/api/requests", "/ui/api/config")
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"authorization": f"Bearer {CLIENT_KEY}"}


def chat(gw: RunningGateway, text: str = "hi", model: str = "echo", headers: dict[str, str] | None = None) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{gw.url}/chat/completions", json=body, headers=headers or CLIENT).status_code


@pytest.fixture(scope="module")
def admin_gw() -> Iterator[RunningGateway]:
    config = {
        "server": {
            "api_keys": [CLIENT_KEY],
            "admin_api_keys": [ADMIN_KEY],
            "ui": {"recent_requests": 50, "stats_interval_seconds": 0.2},
        },
        "providers": {
            "echo": {"type": "echo"},
            # Nothing listens there: requests to "down" fail, and its key must never reach the UI.
            "up": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1", "api_key": UPSTREAM_KEY},
        },
        "models": {
            "echo": {"provider": "echo", "model": "echo"},
            "down": {"provider": "up", "model": "m", "fallbacks": []},
            "both": {"deployments": [{"provider": "echo", "model": "echo"}, {"provider": "up", "model": "m"}]},
        },
    }
    with run_gateway(config) as gw:
        yield gw


def get(gw: RunningGateway, path: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    return httpx.get(gw.root + path, headers=ADMIN if headers is None else headers, params=params)


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer not-the-admin-key"},
        CLIENT,  # a client key is not an admin key
        {"cookie": f"admin_key={ADMIN_KEY}"},  # never taken from a cookie (CSRF)
        {"authorization": f"Basic {ADMIN_KEY}"},
    ],
)
def test_the_data_endpoints_answer_401_without_an_admin_key(
    admin_gw: RunningGateway, path: str, headers: dict[str, str]
) -> None:
    resp = get(admin_gw, path, headers)
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "invalid_api_key"
    assert "server.admin_api_keys" in error["message"]
    assert "'unsafe-inline'" not in resp.headers["content-security-policy"]


@pytest.mark.parametrize("headers", [ADMIN, {"api-key": ADMIN_KEY}])
def test_an_admin_key_in_a_header_signs_in(admin_gw: RunningGateway, headers: dict[str, str]) -> None:
    resp = get(admin_gw, "/ui/api/session", headers)
    assert resp.status_code == 200
    session = resp.json()
    assert session["auth"] == "admin_key" and session["signed_in_as"].startswith("key-")
    assert session["client_keys_required"] is True and session["playground_admin_key"] is False
    assert session["models"] == ["both", "down", "echo"]
    assert resp.headers["cache-control"] == "no-store"


def test_the_page_needs_no_client_key_and_sets_a_strict_csp(admin_gw: RunningGateway) -> None:
    resp = httpx.get(admin_gw.root + "/ui")  # server.api_keys is set: /ui is still reachable, it signs in itself
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    csp = dict(part.strip().split(" ", 1) for part in resp.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'" and csp["default-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'" and csp["connect-src"] == "'self'"
    assert "unsafe" not in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline: list[str] = []
        self.handlers: list[str] = []
        self.styles: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.handlers += [f"{tag}.{n}" for n in names if n.startswith("on")]
        if "style" in names or tag == "style":
            self.styles.append(tag)
        if tag == "script":
            self._in_script = True
            if names.get("src"):
                self.sources.append(str(names["src"]))

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_page_has_no_inline_script_style_or_handler_and_its_files_are_served(admin_gw: RunningGateway) -> None:
    parser = _Scripts()
    parser.feed(httpx.get(admin_gw.root + "/ui").text)
    assert parser.sources == ["ui/static/app.js"]
    assert parser.inline == [] and parser.handlers == [] and parser.styles == []
    # Every module the page imports, and the style sheet, come from the gateway itself.
    seen: set[str] = set()
    todo = ["app.js", "style.css"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        resp = httpx.get(f"{admin_gw.root}/ui/static/{name}")
        assert resp.status_code == 200, name
        assert "content-security-policy" in resp.headers
        assert not re.search(r"https?://", resp.text.replace("http://www.w3.org/2000/svg", "")), name
        assert "eval(" not in resp.text and "innerHTML" not in resp.text, name
        todo += re.findall(r'from "\./([a-z]+\.js)"', resp.text)
    assert {"app.js", "api.js", "overview.js", "plot.js", "playground.js"} <= seen


@pytest.mark.parametrize("name", ["../__init__.py", "routes.py", "nope.js", ".hidden.js"])
def test_only_the_ui_files_are_served(admin_gw: RunningGateway, name: str) -> None:
    resp = httpx.get(f"{admin_gw.root}/ui/static/{name}")
    assert resp.status_code == 404
    assert "error" in resp.json()


def test_overview_lists_providers_models_and_stores(admin_gw: RunningGateway) -> None:
    assert chat(admin_gw, model="down") >= 500
    data = get(admin_gw, "/ui/api/overview").json()
    assert set(data["providers"]) == {"echo", "up"}
    up = data["providers"]["up"]
    assert up["type"] == "openai_compatible" and "status" in up and "circuit" in up
    assert "127.0.0.1:9" in up["last_error_message"]
    models = {m["name"]: m for m in data["models"]}
    assert [d["provider"] for d in models["both"]["deployments"]] == ["echo", "up"]
    down = models["down"]["deployments"]
    assert [(d["provider"], d["model"], d["weight"]) for d in down] == [("up", "m", 1)]
    # The balancer's view of it: a breaker state, requests in flight, failures counted.
    assert down[0]["circuit"] in ("closed", "open", "half_open") and down[0]["inflight"] == 0
    assert down[0]["failures"] >= 1 and down[0]["cooling_down_seconds"] >= 0
    assert data["stores"]["state"]["status"] == "ok" and data["stores"]["state"]["backend"] == "disk"
    assert data["stores"]["cache"]["status"] == "unused"  # no model uses the cache: not opened to be looked at
    assert data["health"]["status"] in ("ok", "degraded", "down")
    assert UPSTREAM_KEY not in str(data) and CLIENT_KEY not in str(data)


def test_recent_requests_are_recorded_without_contents_and_filtered(admin_gw: RunningGateway) -> None:
    marker = "a-message-that-must-not-be-kept"
    assert chat(admin_gw, marker) == 200
    assert chat(admin_gw, marker, headers={"authorization": "Bearer wrong"}) == 401
    assert chat(admin_gw, marker, model="down") >= 500
    resp = get(admin_gw, "/ui/api/requests")
    assert marker not in resp.text
    data = resp.json()
    records = data["records"]
    assert data["capacity"] == 50 and len(records) >= 3
    newest = records[0]
    assert newest["model"] == "down" and newest["status"] >= 500 and "provider up" in newest["error"]
    assert set(newest) >= {"time", "method", "endpoint", "status", "latency_ms", "key_id", "model", "error"}
    ok = get(admin_gw, "/ui/api/requests", model="echo", status="200").json()["records"]
    assert ok and all(r["model"] == "echo" and r["status"] == 200 for r in ok)
    assert ok[0]["endpoint"] == "/v1/chat/completions" and ok[0]["input_tokens"] >= 1
    refused = get(admin_gw, "/ui/api/requests", status="4xx").json()["records"]
    assert refused and all(400 <= r["status"] < 500 for r in refused)
    assert "Incorrect API key" in refused[0]["error"]
    kid = ok[0]["key_id"]
    assert kid in data["key_ids"] and "echo" in data["models"]
    by_key = get(admin_gw, "/ui/api/requests", key_id=kid).json()["records"]
    assert by_key and all(r["key_id"] == kid for r in by_key)
    assert get(admin_gw, "/ui/api/requests", key_id="key-nobody").json()["records"] == []
    # The UI's own calls, probes and scrapes are not recorded.
    httpx.get(admin_gw.root + "/health")
    records = get(admin_gw, "/ui/api/requests").json()["records"]
    assert not any(r["endpoint"].startswith(("/ui", "/health")) for r in records)


@pytest.mark.parametrize("status", ["abc", "99", "6xx", "2x"])
def test_a_bad_status_filter_is_a_400_naming_it(admin_gw: RunningGateway, status: str) -> None:
    resp = get(admin_gw, "/ui/api/requests", status=status)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "status" and "4xx" in resp.json()["error"]["message"]


def test_a_bad_limit_is_a_400(admin_gw: RunningGateway) -> None:
    resp = get(admin_gw, "/ui/api/requests", limit="0")
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "limit"


def test_the_ring_buffer_keeps_the_newest_records_only(admin_gw: RunningGateway) -> None:
    for i in range(60):
        chat(admin_gw, f"m{i}")
    data = get(admin_gw, "/ui/api/requests", limit=1000).json()
    assert data["total"] == 50 and len(data["records"]) == 50
    times = [r["time"] for r in data["records"]]
    assert times == sorted(times, reverse=True)  # newest first


def test_traffic_reports_rate_latency_and_tokens(admin_gw: RunningGateway) -> None:
    for _ in range(5):
        assert chat(admin_gw, "one two three") == 200
    deadline = time.monotonic() + 10
    while True:
        traffic = get(admin_gw, "/ui/api/traffic").json()
        if any(p["requests"] for p in traffic["series"]) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert traffic["interval_seconds"] == 0.2
    minute = traffic["last_minute"]
    assert minute["requests"] >= 5 and minute["requests_per_second"] > 0
    assert minute["p50_ms"] is not None and minute["p95_ms"] >= minute["p50_ms"]
    assert minute["tokens_per_minute"] > 0
    assert minute["error_rate"] is not None and 0 <= minute["error_rate"] <= 1
    point = next(p for p in traffic["series"] if p["requests"])
    assert set(point) >= {"time", "requests_per_second", "error_rate", "p50_ms", "p95_ms", "tokens_per_minute"}


def test_the_configuration_shows_sources_and_never_a_secret(admin_gw: RunningGateway) -> None:
    resp = get(admin_gw, "/ui/api/config")
    for secret in (ADMIN_KEY, CLIENT_KEY, UPSTREAM_KEY):
        assert secret not in resp.text
    rows = {r["key"]: r for r in resp.json()["settings"]}
    assert rows["providers.up.api_key"]["value"] == "***"
    assert rows["server.admin_api_keys"]["value"] == ["***"] and rows["server.api_keys"]["value"] == ["***"]
    assert rows["providers.up.base_url"]["source"] == "file"
    assert rows["providers.up.base_url"]["origin"].startswith("file ")
    assert rows["server.port"]["source"] == "default" and rows["server.port"]["value"] == 3000
    assert rows["server.ui.recent_requests"] == {
        "key": "server.ui.recent_requests",
        "value": 50,
        "source": "file",
        "origin": rows["server.ui.recent_requests"]["origin"],
    }


def test_quantiles_interpolate_within_buckets() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.3)
    assert quantile(0.95, buckets) == pytest.approx(0.75)
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == pytest.approx(0.1)


# --- Who may open the UI without admin keys, and the environment override ---


def test_without_admin_keys_on_loopback_the_ui_is_open() -> None:
    with run_gateway({"server": {"api_keys": [CLIENT_KEY]}}) as gw:
        resp = httpx.get(gw.root + "/ui/api/session")
        assert resp.status_code == 200 and resp.json()["auth"] == "loopback"
        assert httpx.get(gw.root + "/ui/api/overview").status_code == 200
        assert httpx.get(gw.root + "/ui").status_code == 200


def test_without_admin_keys_on_another_address_the_ui_says_how_to_enable_it() -> None:
    # The configuration says 0.0.0.0; the test server itself stays on loopback.
    with run_gateway({"server": {"host": "0.0.0.0"}}) as gw:
        page = httpx.get(gw.root + "/ui")
        assert page.status_code == 403 and "content-security-policy" in page.headers
        assert "server.admin_api_keys" in page.text and "MODELMUX_SERVER__ADMIN_API_KEYS" in page.text
        assert "<script" not in page.text
        resp = httpx.get(gw.root + "/ui/api/overview")
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "ui_disabled"
        assert "MODELMUX_SERVER__ADMIN_API_KEYS" in resp.json()["error"]["message"]
        assert chat(gw, headers={}) == 200  # nothing recorded, nothing else changed


def test_admin_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MODELMUX_SERVER__ADMIN_API_KEYS": f'["{ADMIN_KEY}"]'}
    with run_gateway({"server": {"host": "0.0.0.0"}}, env=env) as gw:
        assert httpx.get(gw.root + "/ui/api/session").status_code == 401
        assert get(gw, "/ui/api/session").status_code == 200
        rows = {r["key"]: r for r in get(gw, "/ui/api/config").json()["settings"]}
        assert rows["server.admin_api_keys"]["source"] == "env"
        assert rows["server.admin_api_keys"]["origin"] == "env MODELMUX_SERVER__ADMIN_API_KEYS"
        assert httpx.get(gw.root + "/ui").status_code == 200


def test_the_ui_can_be_turned_off() -> None:
    with run_gateway({"server": {"admin_api_keys": [ADMIN_KEY], "ui": {"enabled": False}}}) as gw:
        for path in ("/ui", "/ui/api/overview"):
            resp = get(gw, path)
            assert resp.status_code == 404 and "server.ui.enabled" in resp.json()["error"]["message"]


@pytest.mark.parametrize("allowed", [False, True])
def test_the_admin_key_calls_the_api_only_when_the_playground_may_use_it(allowed: bool) -> None:
    server = {"api_keys": [CLIENT_KEY], "admin_api_keys": [ADMIN_KEY], "ui": {"playground_admin_key": allowed}}
    with run_gateway({"server": server}) as gw:
        assert chat(gw, headers=ADMIN) == (200 if allowed else 401)
        assert chat(gw, headers=CLIENT) == 200
        assert get(gw, "/ui/api/session").json()["playground_admin_key"] is allowed


def test_an_admin_key_also_shows_health_details(admin_gw: RunningGateway) -> None:
    assert chat(admin_gw, model="down") >= 500
    hidden = httpx.get(admin_gw.root + "/health").json()["providers"]["up"]["last_error_message"]
    shown = get(admin_gw, "/health").json()["providers"]["up"]["last_error_message"]
    assert "127.0.0.1:9" not in hidden and "127.0.0.1:9" in shown
