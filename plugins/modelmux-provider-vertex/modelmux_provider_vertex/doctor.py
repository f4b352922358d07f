"""``modelmux doctor`` checks for a Vertex provider, each failure with its fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from modelmux.plugin import Check, ModelMuxError, timeout_for, upstream_errors

if TYPE_CHECKING:
    from modelmux_provider_vertex.provider import VertexProvider


async def run_checks(provider: VertexProvider) -> list[Check]:
    checks: list[Check] = []
    auth = provider.auth
    source = f"credentials_file {auth.credentials_file}" if auth.credentials_file else "Application Default Credentials"
    try:
        await auth.ensure_loaded()
        checks.append(Check("Google credentials found", True, f"{source}: {auth.principal}", topic="auth"))
    except ModelMuxError as exc:
        checks.append(Check("Google credentials found", False, exc.message, _fix(exc.message), topic="auth"))
        return checks
    try:
        headers = await auth.headers()
        checks.append(Check("access token obtainable", True, f"token for {auth.principal}", topic="auth"))
    except ModelMuxError as exc:
        checks.append(Check("access token obtainable", False, exc.message, _fix(exc.message), topic="auth"))
        return checks
    project = provider.project
    if not project:
        checks.append(
            Check(
                "project set",
                False,
                f"providers.{provider.name}.project: missing",
                "set project in the provider table, set GOOGLE_CLOUD_PROJECT, "
                "or run: modelmux config init --preset vertex",
                topic="config",
            )
        )
        return checks
    checks.append(Check("project set", True, f"{project}, region {provider.settings.region}", topic="config"))
    # GET the location: cheap, free, and it answers both "reachable" and "allowed".
    url = provider.location_url()
    try:
        async with upstream_errors(provider.name):
            async with provider.host.http.get(url, headers=headers, timeout=timeout_for(provider.settings)) as resp:
                body = await resp.read()
                status = resp.status
    except (ModelMuxError, aiohttp.ClientError) as exc:
        message = getattr(exc, "message", str(exc))
        checks.append(
            Check(
                "Vertex AI endpoint reachable",
                False,
                f"{provider.base_url}: {message}",
                "check network access (proxy, firewall) to the Vertex AI host, or base_url if you set it",
            )
        )
        return checks
    if status in (401, 403):
        err = provider._error(status, body, resp.headers, "(any)")
        checks.append(Check("Vertex AI endpoint reachable", False, err.args[0], _fix(err.args[0]), topic="auth"))
    elif status == 404:
        checks.append(
            Check(
                "Vertex AI endpoint reachable",
                False,
                f"{url}: 404",
                f"check region {provider.settings.region!r} (e.g. us-east5, europe-west1 or global) and project",
                topic="config",
            )
        )
    else:
        checks.append(Check("Vertex AI endpoint reachable", True, f"{provider.base_url} answered {status}"))
    return checks


def _fix(message: str) -> str:
    _, sep, fix = message.partition("Fix: ")
    return fix if sep else "check the provider's credentials and settings"
