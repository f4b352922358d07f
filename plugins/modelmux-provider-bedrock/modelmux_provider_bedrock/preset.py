"""``modelmux config init --preset bedrock``: a working configuration from what the machine shows.

Detection reads only the environment and the AWS config files (no network): the
profile from AWS_PROFILE, the region from AWS_REGION / AWS_DEFAULT_REGION or the
profile, and whether a Bedrock API key is in AWS_BEARER_TOKEN_BEDROCK.
"""

from __future__ import annotations

import json
import os
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError

from modelmux_provider_bedrock.auth import API_KEY_ENV

FALLBACK_REGION = "us-east-1"


def detect(environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    found: dict[str, Any] = {"profile": env.get("AWS_PROFILE") or None}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    source = "environment" if region else None
    if not region:
        try:
            region = botocore.session.Session(profile=found["profile"]).get_config_variable("region")
            source = f"profile {found['profile'] or 'default'}" if region else None
        except BotoCoreError:  # e.g. AWS_PROFILE names a profile that does not exist
            region = None
    found["region"] = region
    found["region_source"] = source
    found["api_key"] = bool(env.get(API_KEY_ENV))
    found["static_keys"] = bool(env.get("AWS_ACCESS_KEY_ID"))
    return found


def geo_prefix(region: str) -> str:
    """The cross-region inference profile prefix for a region (us., eu., apac.)."""
    if region.startswith("eu-"):
        return "eu"
    if region.startswith("ap-"):
        return "apac"
    return "us"


def render(detected: dict[str, Any]) -> str:
    region = detected.get("region") or FALLBACK_REGION
    geo = geo_prefix(region)
    lines = [
        "# ModelMux configuration: AWS Bedrock through the Converse API.",
        "# Docs: docs/providers/bedrock.md",
        "[server]",
        'host = "127.0.0.1"',
        "port = 3000",
        "",
        "[state]",
        'backend = "disk"',
        "",
        "[providers.bedrock]",
        'type = "bedrock"',
    ]
    if detected.get("region"):
        lines.append(f"region = {json.dumps(region)}  # detected from the {detected.get('region_source')}")
    else:
        lines.append(f"region = {json.dumps(region)}  # not detected: set the region your models are enabled in")
    if detected.get("api_key"):
        lines.append(f'api_key = "${{{API_KEY_ENV}}}"  # Bedrock API key (bearer) found in the environment')
    elif detected.get("profile"):
        lines.append(f"profile = {json.dumps(detected['profile'])}  # detected from AWS_PROFILE")
    else:
        where = "environment keys" if detected.get("static_keys") else "the standard chain"
        lines.append(f"# credentials: {where} (env vars, ~/.aws profile, SSO, instance/container role);")
        lines.append('# or profile = "NAME", or aws_access_key_id / aws_secret_access_key, or api_key = "..."')
    lines += [
        '# endpoint_url = "https://bedrock-runtime.REGION.amazonaws.com"  # e.g. a VPC endpoint',
        "timeout_seconds = 120",
        "max_retries = 2",
        "",
        "# Cross-region inference profile ids; enable model access in the Bedrock console first.",
        "[models.claude-sonnet]",
        'provider = "bedrock"',
        f'model = "{geo}.anthropic.claude-sonnet-4-5-20250929-v1:0"',
        "",
        "[models.claude-haiku]",
        'provider = "bedrock"',
        f'model = "{geo}.anthropic.claude-haiku-4-5-20251001-v1:0"',
        "",
        "[models.nova-lite]",
        'provider = "bedrock"',
        f'model = "{geo}.amazon.nova-lite-v1:0"',
        "",
    ]
    return "\n".join(lines)
