"""``/health/ready`` for Bedrock: credentials resolve and the runtime endpoint answers."""

from __future__ import annotations

from typing import Any

import httpx

from modelmux.testing import run_gateway


def test_ready_while_the_endpoint_answers_and_503_when_it_is_down(
    start_fake_bedrock: Any, config_for_fake: Any
) -> None:
    fake = start_fake_bedrock()
    config = config_for_fake(fake)
    config["server"]["ready_check_interval_seconds"] = 0
    config["server"]["ready_requires_providers"] = "all"
    with run_gateway(config) as gw:
        up = httpx.get(f"{gw.root}/health/ready")
        assert up.status_code == 200, up.text
        assert [r["path"] for r in fake.requests] == ["/"]  # no model was invoked

        fake.stop()
        down = httpx.get(f"{gw.root}/health/ready")
        assert down.status_code == 503
        assert "cannot connect" in down.json()["problems"]["bedrock"]
