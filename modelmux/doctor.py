"""``modelmux doctor`` and ``troubleshoot``: the checks they run and how each row is worded.

A row says each thing once: where (the provider), what was checked, the cause, and one fix
that names where a value really came from (a file or an environment variable).
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from loguru import logger

from modelmux.provider import Check, Provider

if TYPE_CHECKING:
    from modelmux.config import Config
    from modelmux.gateway import Gateway
    from modelmux.plugins import Plugins

#: How many upstream model ids a failed model check lists.
SHOWN_MODELS = 8

_SETTING = re.compile(r"\bproviders\.([\w-]+)\.(\w+)")


async def run_checks(config: Config, plugins: Plugins) -> list[tuple[str, Check]]:
    """Every check, as (where, check): configuration, plugins, each provider and tool, the state store."""
    from modelmux.gateway import Gateway

    checks: list[tuple[str, Check]] = [
        ("config", Check("configuration is valid", True, str(config.path or "no file"), topic="config"))
    ]
    for name, err in plugins.errors.items():
        fix = "reinstall it, or disable it with MODELMUX_DISABLE_PLUGINS"
        checks.append(("plugins", Check(f"plugin {name} loads", False, err, fix, "config")))
    gw = Gateway(config, plugins)
    # The report says what failed, once: not also as the gateway's log lines.
    logger.disable("modelmux")
    try:
        await gw.start()
    finally:
        logger.enable("modelmux")
    try:
        for name, err in gw.provider_errors.items():
            # The error's own fix, when it has one, is the more precise.
            cause, _, own_fix = err.partition(" Fix: ")
            fix = own_fix.rstrip(".") or f"correct the settings under [providers.{name}]"
            checks.append((name, Check("provider starts", False, cause, fix, "config")))
        for name, provider in gw.providers.items():
            try:
                checks.extend((name, check) for check in await provider.doctor())
            except Exception as exc:
                checks.append((name, Check("checks ran", False, f"{type(exc).__name__}: {exc}")))
            if not any(where == name and not check.ok for where, check in checks):
                checks.extend((name, check) for check in await _model_checks(config, gw, name, provider))
        for name, err in gw.tool_errors.items():
            checks.append((f"tools.{name}", Check("tool starts", False, err, f"correct [tools.{name}]", "config")))
        for tool in gw.unique_tools():
            try:
                checks.extend((f"tools.{tool.type}", check) for check in await tool.doctor())
            except Exception as exc:
                checks.append((f"tools.{tool.type}", Check("checks ran", False, f"{type(exc).__name__}: {exc}")))
        checks.append(await _state_check(config, gw))
    finally:
        await gw.aclose()
    return [(where, tidy(where, check, config.sources)) for where, check in checks]


async def _model_checks(config: Config, gw: Gateway, name: str, provider: Provider) -> list[Check]:
    """Whether the upstream offers every model id the configuration sends to this provider.

    Only for providers whose ``list_models`` lists the ids requests name (not Azure's base
    models, for instance): else a configured model that does not exist passes every other
    check and fails only on the first request."""
    if not provider.lists_model_ids or type(provider).list_models is Provider.list_models:
        return []
    wanted: dict[str, list[str]] = {}  # upstream id -> the [models] entries that send it
    for model_name, model in sorted(config.settings.models.items()):
        for target in model.targets():
            if target.provider == name:
                wanted.setdefault(target.model, []).append(model_name)
    if not wanted:
        return []
    try:
        offered = await provider.list_models()
    except Exception as exc:  # the provider's own checks report an unreachable upstream
        detail = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return [Check("configured models exist upstream", False, detail, "see the checks above", "network")]
    if not offered:
        return []  # an upstream that lists nothing (or cannot list) proves nothing either way
    known = set(offered)
    checks: list[Check] = []
    for model_id, names in wanted.items():
        if model_id in known:
            continue
        keys = " and ".join(f"models.{n}" for n in names)
        close = difflib.get_close_matches(model_id, offered, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listed = ", ".join(offered[:SHOWN_MODELS]) + (", ..." if len(offered) > SHOWN_MODELS else "")
        checks.append(
            Check(
                f"model {model_id} exists upstream",
                False,
                f"{keys} sends {model_id!r}, which the upstream does not offer.{hint} It offers: {listed}",
                f"set the model of {keys} to an id from `modelmux models --provider {name}`, "
                "or load the model on the upstream",
                "config",
            )
        )
    if not checks:
        ids = ", ".join(wanted)
        checks.append(Check("configured models exist upstream", True, ids, topic="config"))
    return checks


async def _state_check(config: Config, gw: Gateway) -> tuple[str, Check]:
    backend = config.settings.state.backend
    try:
        if gw.state is not None:
            await gw.state.ping()
    except Exception as exc:
        return ("state", Check("state store answers", False, str(exc), "check [state]", "config"))
    return ("state", Check(f"state store {backend} answers", True, topic="config"))


def tidy(where: str, check: Check, sources: dict[str, str]) -> Check:
    """``check`` saying each thing once: without the ``provider NAME:`` that the row's ``where``
    already says, with one fix (an error message's own "Fix: ..." gives way to the check's),
    and naming the environment variable a setting came from."""
    detail = check.detail
    prefix = f"provider {where}: "
    while detail.startswith(prefix):
        detail = detail[len(prefix) :]
    fix = check.fix
    if fix and not check.ok:
        detail = detail.split(" Fix: ", 1)[0]
    if not check.ok:
        fix = _name_env_sources(fix or "", detail, sources)
    return Check(check.name, check.ok, detail, fix, check.topic)


def _name_env_sources(fix: str, detail: str, sources: dict[str, str]) -> str:
    """``fix`` plus, for each ``providers.NAME.KEY`` it or the detail names that was set by an
    environment variable, which variable: editing the file would change nothing."""
    notes: list[str] = []
    for match in _SETTING.finditer(f"{fix} {detail}"):
        origin = sources.get(match.group(0), "")
        if origin.startswith("env "):
            note = f"{match.group(0)} is set by the environment variable {origin[4:]}: change it there"
            if note not in notes:
                notes.append(note)
    if not notes:
        return fix
    return "; ".join([fix, *notes]) if fix else "; ".join(notes)
