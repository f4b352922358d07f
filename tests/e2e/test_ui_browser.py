"""The web UI in a real browser: `modelmux serve` driven through Debian's chromium by Playwright.

Sign-in, the provider list, live traffic without a reload, recent requests, the configuration
without secrets (in the page and in every /ui/api answer the page received), and a playground
round trip through echo. Chromium comes from the system (`.ci/run` installs it); Playwright
never downloads a browser here. With MODELMUX_UI_SCREENSHOTS=DIR the pages are also saved there
as PNG (docs/img/ui-*.png are made this way, see docs/ui.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from modelmux.testing import free_port

CHROMIUM = os.environ.get("MODELMUX_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"no chromium at {CHROMIUM}: install Debian's package (apt-get install chromium); .ci/run does",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

ADMIN_KEY = "mm-admin-browser-3e7d21"
CLIENT_KEY = "sk-browser-client-8c41f0"
UPSTREAM_KEY = "sk-browser-upstream-secret-d2a9b7"
SECRETS = (CLIENT_KEY, UPSTREAM_KEY)
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """A real `modelmux serve` with client keys, an admin key, echo and an upstream that is down
    (started here, waited for in ``server``: the browser starts meanwhile)."""
    tmp = tmp_path_factory.mktemp("ui-browser")
    config = {
        "server": {
            "api_keys": [CLIENT_KEY],
            "admin_api_keys": [ADMIN_KEY],
            "ui": {"stats_interval_seconds": 0.5, "playground_admin_key": True},
        },
        "state": {"backend": "memory"},
        "providers": {
            "echo": {"type": "echo"},
            # Nothing listens there: the provider shows its last error.
            "vllm": {
                "type": "openai_compatible",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "api_key": UPSTREAM_KEY,
            },
        },
        "models": {
            "echo": {"provider": "echo", "model": "echo"},
            "llama": {"provider": "vllm", "model": "meta-llama/Llama-3.1-8B-Instruct", "fallbacks": ["echo"]},
        },
    }
    path = tmp / "modelmux.toml"
    path.write_text(tomli_w.dumps(config))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELMUX_", "PROMETHEUS_"))}
    exe = str(Path(sys.executable).parent / "modelmux")
    log_path = tmp / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [exe, "serve", "--config", str(path), "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield proc, f"http://127.0.0.1:{port}", log_path
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # A shared 2-core machine may be slow to start a page: generous waits (they end as soon as true).
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(serving: tuple[subprocess.Popen[bytes], str, Path], browser: Any) -> str:
    proc, root, log_path = serving
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"modelmux serve exited with {proc.returncode}: {log_path.read_text()}")
        try:
            if httpx.get(f"{root}/health/live", timeout=1).status_code == 200:
                return root
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("modelmux serve did not start in 60 s")
        time.sleep(0.1)


class Page:
    """A fresh browser page that remembers what the server sent it and what the console said."""

    def __init__(self, browser: Any, root: str) -> None:
        self.context = browser.new_context(viewport={"width": 1300, "height": 950})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.root = root
        self.api_bodies: list[str] = []
        self.console: list[str] = []
        self.page.on("response", self._response)
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    def _response(self, response: Any) -> None:
        if "/ui/api/" in response.url:
            try:
                self.api_bodies.append(response.text())
            except Exception:  # a response the page navigated away from has no body to read
                pass

    def sign_in(self) -> Any:
        page = self.page
        page.goto(f"{self.root}/ui")
        page.get_by_label("Admin key").fill(ADMIN_KEY)
        page.get_by_role("button", name="Sign in").click()
        page.locator("#providers tbody tr[data-provider]").first.wait_for()
        return page

    def screenshot(self, name: str) -> None:
        folder = os.environ.get("MODELMUX_UI_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"ui-{name}.png"), full_page=True)

    def problems(self) -> list[str]:
        """Script errors and CSP violations (the expected 401 of a wrong key is neither)."""
        return [m for m in self.console if m.startswith("pageerror") or "Content Security Policy" in m]


@pytest.fixture
def ui(browser: Any, server: str) -> Iterator[Page]:
    page = Page(browser, server)
    yield page
    page.context.close()


def chat(root: str, text: str, model: str = "echo", key: str = CLIENT_KEY) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{root}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)


def test_sign_in_then_the_providers_and_models(ui: Page, server: str) -> None:
    from playwright.sync_api import expect

    chat(server, "warm up", model="llama")  # the vllm upstream is down: an error to show, echo answers
    page = ui.page
    page.goto(f"{server}/ui")
    key = page.get_by_label("Admin key")
    expect(key).to_be_visible()
    expect(page.get_by_role("tab", name="Overview")).to_be_hidden()
    key.fill("not-the-admin-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Incorrect admin key")
    ui.sign_in()
    expect(page.get_by_role("tab", name="Overview")).to_be_visible()
    providers = page.get_by_role("table", name="Providers")
    expect(providers.locator("tr[data-provider]")).to_have_count(2)
    echo = providers.locator('tr[data-provider="echo"]')
    expect(echo).to_contain_text("echo")
    expect(echo.locator(".badge").first).to_have_text("ok")
    vllm = providers.locator('tr[data-provider="vllm"]')
    expect(vllm).to_contain_text("openai_compatible")
    expect(vllm).to_contain_text("cannot connect")  # the last error, as /health records it
    models = page.get_by_role("table", name="Models")
    expect(models.locator('tr[data-model="llama"]')).to_contain_text("vllm/meta-llama/Llama-3.1-8B-Instruct")
    expect(models.locator('tr[data-model="llama"]')).to_contain_text("echo")  # its fallback
    stores = page.get_by_role("table", name="Stores")
    expect(stores.locator('tr[data-store="state"]')).to_contain_text("memory")
    expect(stores.locator('tr[data-store="state"] .badge')).to_have_text("ok")
    # The key stays in the tab after a reload (session storage), and signing out forgets it.
    page.reload()
    expect(page.get_by_role("table", name="Providers").locator("tr[data-provider]")).to_have_count(2)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin key")).to_be_visible()
    assert ui.problems() == []


def test_live_traffic_updates_without_a_reload(ui: Page, server: str) -> None:
    from playwright.sync_api import expect

    page = ui.sign_in()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    for i in range(8):
        assert chat(server, f"request {i} of the traffic test").status_code == 200
    expect(page.locator("#m-rate")).not_to_have_text("0")
    expect(page.locator("#m-rate")).not_to_have_text("\u2013")  # the placeholder before the first figures
    expect(page.locator("#m-p95")).to_contain_text("ms")
    expect(page.locator("#m-tokens")).not_to_have_text("0")
    page.wait_for_timeout(1200)  # a second burst two samples later: the plots get a shape
    for i in range(8):
        assert chat(server, f"request {i} of the second burst").status_code == 200
    expect(page.locator("#plot-rate path.line")).to_have_count(1)
    # Each latency series is drawn once a sample interval had requests: a line, or a dot for one interval.
    expect(page.locator("#plot-latency path.line.s0")).to_have_count(1)
    expect(page.locator("#plot-latency path.line.s1")).to_have_count(1)
    assert navigations == []  # polled, not reloaded
    ui.screenshot("overview")
    assert ui.problems() == []


def test_recent_requests_filter_by_model_and_status(ui: Page, server: str) -> None:
    from playwright.sync_api import expect

    assert chat(server, "for the log").status_code == 200
    assert chat(server, "refused", key="sk-wrong").status_code == 401
    page = ui.sign_in()
    page.get_by_role("tab", name="Recent requests").click()
    log = page.get_by_role("table", name="Recent requests")
    filters = page.locator("#request-filters")
    expect(log.locator('tr[data-status="401"]').first).to_contain_text("Incorrect API key")
    filters.get_by_label("Status").fill("4xx")
    filters.get_by_label("Status").press("Enter")
    expect(log.locator('tr[data-status="200"]')).to_have_count(0)
    expect(log.locator('tr[data-status="401"]').first).to_be_visible()
    filters.get_by_label("Status").fill("")
    filters.get_by_label("Model").select_option("echo")
    expect(log.locator("tbody tr").first).to_contain_text("echo")
    expect(log.locator('tr[data-status="401"]')).to_have_count(0)
    assert "for the log" not in page.content()  # no message contents
    ui.screenshot("requests")
    assert ui.problems() == []


def test_no_secret_reaches_the_page(ui: Page, server: str) -> None:
    from playwright.sync_api import expect

    page = ui.sign_in()
    seen = [page.content()]
    for tab in ("Recent requests", "Configuration", "Playground", "Overview"):
        page.get_by_role("tab", name=tab).click()
        if tab == "Configuration":
            table = page.get_by_role("table", name="Configuration")
            expect(table.locator('tr[data-key="providers.vllm.api_key"]')).to_contain_text("***")
            expect(table.locator('tr[data-key="server.api_keys"]')).to_contain_text("***")
            expect(table.locator('tr[data-key="server.admin_api_keys"]')).to_contain_text("***")
            expect(table.locator('tr[data-key="providers.vllm.base_url"]')).to_contain_text("file")
            # `serve --port` passes the port on as MODELMUX_SERVER__PORT.
            expect(table.locator('tr[data-key="server.port"]')).to_contain_text("env: MODELMUX_SERVER__PORT")
            expect(table.locator('tr[data-key="server.log_format"]')).to_contain_text("default")
            ui.screenshot("config")
        seen.append(page.content())
    assert len(ui.api_bodies) >= 4
    for text in seen + ui.api_bodies:
        for secret in (*SECRETS, ADMIN_KEY):
            assert secret not in text
    # The raw answers too, fetched as a script would.
    for path in ("session", "overview", "traffic", "requests", "config"):
        resp = httpx.get(f"{server}/ui/api/{path}", headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert resp.status_code == 200
        for secret in (*SECRETS, ADMIN_KEY):
            assert secret not in resp.text, path
    assert ui.problems() == []


def test_playground_round_trip_through_echo(ui: Page, server: str) -> None:
    from playwright.sync_api import expect

    page = ui.sign_in()
    page.get_by_role("tab", name="Playground").click()
    page.get_by_role("combobox", name="Model").fill("echo")
    page.get_by_label("Message").fill("hello from a real browser through the gateway")
    page.get_by_role("button", name="Send").click()
    status = page.locator("#pg-status")
    expect(status).to_contain_text("401")  # a client key is required on this server
    page.get_by_label("Client key", exact=True).fill(CLIENT_KEY)
    page.get_by_role("button", name="Send").click()
    response = page.locator('[aria-label="Response"]')
    expect(response).to_have_text("hello from a real browser through the gateway")
    expect(status).to_contain_text("done")
    expect(status).to_contain_text("tokens")  # stream_options.include_usage: the usage chunk arrived
    ui.screenshot("playground")
    # The operator allows the admin session (server.ui.playground_admin_key): no client key needed.
    page.get_by_label("Client key", exact=True).fill("")
    page.get_by_label("Use my admin session").check()
    page.get_by_label("Message").fill("sent with the admin session")
    page.get_by_role("button", name="Send").click()
    expect(response).to_have_text("sent with the admin session")
    expect(status).to_contain_text("done")
    # It was a normal API call: in the recent requests, streamed, with the client key's id.
    page.get_by_role("tab", name="Recent requests").click()
    log = page.get_by_role("table", name="Recent requests")
    expect(log.locator('tr[data-status="200"]').first).to_contain_text("echo")
    assert ui.problems() == []
