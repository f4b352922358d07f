"""Secrets in a provider's ``headers`` table (issue 15): every value is a secret, whatever the
header's name, and none reaches any output: the start-up log, ``modelmux config show`` (and
``--sources``), ``config validate``'s errors, the client's error when an upstream quotes the
request headers back, ``/health`` and the log lines. A real ``modelmux serve``, raw HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelmux.testing.process import ServeProcess

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def leaked(text: str, secrets: dict[str, str]) -> list[str]:
    """The secrets (or the credential after their auth scheme) found in ``text``."""
    found = []
    for value in secrets.values():
        credential = value.partition(" ")[2] or value
        if value in text or credential in text:
            found.append(value)
    return found


def modelmux(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "modelmux"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_an_upstream_quoting_our_headers_leaks_nothing(
    api: httpx.Client, served: ServeProcess, header_secrets: dict[str, str], stream: bool, path: str
) -> None:
    body = {"model": "vllm/quote-headers", "stream": stream, **(CHAT if "chat" in path else {"input": "hi"})}
    resp = api.post(path, json=body)
    assert resp.status_code == 502, resp.text
    assert "proxy failure, request headers were" in resp.json()["error"]["message"]  # the message still helps
    assert "***" in resp.text
    assert not leaked(resp.text, header_secrets)
    for health in (httpx.get(served.root + "/health"), api.get("/health"), api.get("/health/ready")):
        assert not leaked(health.text, header_secrets)
    assert "***" in api.get("/health").text  # the stored last_error_message, scrubbed
    assert not leaked(served.logs(), header_secrets)


def test_the_upstream_did_get_the_headers(api: httpx.Client, upstream: object, header_secrets: dict[str, str]) -> None:
    # the secrets are real request headers (the test above would prove nothing otherwise)
    assert api.post("/v1/chat/completions", json={"model": "llama", **CHAT}).status_code == 200
    sent = upstream.requests[-1]["headers"]  # type: ignore[attr-defined]
    for name, value in header_secrets.items():
        assert sent[name] == value


def test_the_start_up_log_shows_the_header_names_not_values(
    served: ServeProcess, header_secrets: dict[str, str]
) -> None:
    logs = served.logs()
    assert "provider vllm:" in logs and "X-Auth-Token" in logs
    assert not leaked(logs, header_secrets)


def test_config_show_and_sources_mask_every_header(served: ServeProcess, header_secrets: dict[str, str]) -> None:
    shown = modelmux("config", "show", "--config", str(served.config_path), "--sources")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout + shown.stderr
    assert "Ocp-Apim-Subscription-Key" in out and '"***"' in out
    assert not leaked(out, header_secrets)


def test_doctor_leaks_nothing(served: ServeProcess, header_secrets: dict[str, str]) -> None:
    # the fake upstream's model list (doctor's and readiness' probe) quotes every request header
    result = modelmux("doctor", "--config", str(served.config_path))
    out = result.stdout + result.stderr
    assert "models unavailable" in out and "***" in out
    assert not leaked(out, header_secrets)


def test_config_errors_in_a_headers_table_mask_the_value(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[providers.vllm]\ntype = "openai_compatible"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[providers.vllm.headers]\nX-Auth-Token = ["xat-list-secret-98765"]\n'
    )
    result = modelmux("config", "validate", "--config", str(config))
    assert result.returncode == 2
    assert "providers.vllm.headers.X-Auth-Token" in result.stderr
    assert "xat-list-secret-98765" not in result.stdout + result.stderr
