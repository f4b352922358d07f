"""``/health/ready`` for Vertex AI: a token is obtainable and the region's location answers (no model call)."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from modelmux.testing import run_gateway


def _config(fake: Any, **over: Any) -> dict[str, Any]:
    return {
        "server": {"ready_check_interval_seconds": 0, "ready_requires_providers": "all"},
        "providers": {"claude": fake.provider_table(**over)},
        "models": {"claude": {"provider": "claude", "model": "text@1"}},
    }


def test_ready_while_vertex_answers_and_503_when_it_is_down(start_fake_vertex: Any) -> None:
    with contextlib.ExitStack() as upstream:
        fake = upstream.enter_context(start_fake_vertex())
        with run_gateway(_config(fake)) as gw:
            up = httpx.get(f"{gw.root}/health/ready")
            assert up.status_code == 200, up.text
            assert fake.token_requests == 1 and not fake.predict_requests()
            location = [r for r in fake.server.requests if r["method"] == "GET"][-1]
            assert location["path"] == f"/v1/projects/{fake.project}/locations/{fake.region}"
            assert location["headers"]["Authorization"] == f"Bearer {fake.issued[-1]}"
            assert httpx.get(f"{gw.root}/health/ready").status_code == 200
            assert fake.token_requests == 1  # the token is reused, not fetched per probe

            fake.reject_tokens = True  # a revoked key: reachable but not allowed
            revoked = httpx.get(f"{gw.root}/health/ready")
            assert revoked.status_code == 503
            assert "rejected the access token" in revoked.json()["problems"]["claude"]
            fake.reject_tokens = False

            upstream.close()
            down = httpx.get(f"{gw.root}/health/ready")
            assert down.status_code == 503
            assert "cannot connect" in down.json()["problems"]["claude"]


def test_a_wrong_region_is_not_ready(start_fake_vertex: Any) -> None:
    with start_fake_vertex() as fake, run_gateway(_config(fake, region="mars-central1")) as gw:
        down = httpx.get(f"{gw.root}/health/ready")
        assert down.status_code == 503
        assert "no location 'mars-central1'" in down.json()["problems"]["claude"]
