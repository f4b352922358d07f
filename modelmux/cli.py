"""The ``modelmux`` command line (click + rich). Plugins add commands via ``register_commands``."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click
import tomli_w

from modelmux import __version__
from modelmux.config import Config, ConfigError, load_config, shown
from modelmux.plugins import Plugins, load_plugins

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


#: The width of output that is not a terminal (a pipe, a file): wide enough that rich never
#: cuts or wraps a name someone copies from it.
PIPE_WIDTH = 4096


@functools.cache
def _console(stderr: bool = False) -> Console:
    """rich is imported by the commands that print, not by ``serve`` on its way to serving."""
    from rich.console import Console

    console = Console(stderr=stderr)
    # Not COLUMNS either: a pipe has no width, and a parent process's readline exports COLUMNS.
    return console if console.is_terminal else Console(stderr=stderr, width=PIPE_WIDTH)


def _table(*headers: str) -> Table:
    """A table whose cells fold onto more lines on a narrow terminal but are never cut short."""
    from rich.table import Table

    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def escape(text: str) -> str:
    """Messages hold [table] names, not rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _fail(message: str, code: int = 1) -> None:
    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


@functools.cache
def _plugins() -> Plugins:
    """Plugins are discovered once per command (sub-commands and the command itself share them)."""
    return load_plugins()


def _load(config_path: str | None) -> tuple[Plugins, Config]:
    plugins = _plugins()
    try:
        return plugins, load_config(config_path, plugins.registry)
    except ConfigError as exc:
        for problem in exc.problems:
            _console(stderr=True).print(
                f"[bold red]config error:[/] {escape(problem)}", highlight=False, soft_wrap=True
            )
        sys.exit(2)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="configuration file",
)


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        _add_plugin_commands(self)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None:
            _add_plugin_commands(self)
            cmd = super().get_command(ctx, name)
        return cmd


_plugin_commands_added = False


def _add_plugin_commands(group: click.Group) -> None:
    global _plugin_commands_added
    if _plugin_commands_added:
        return
    _plugin_commands_added = True
    _plugins().call("register_commands", cli=group)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="modelmux")
def main() -> None:
    """ModelMux: one OpenAI-compatible endpoint in front of every model you run."""


@main.command()
@config_option
@click.option("--host", default=None, help="address to listen on (server.host)")
@click.option("--port", type=int, default=None, help="port (server.port)")
@click.option("--workers", type=int, default=None, help="worker processes (server.workers)")
def serve(config_path: str | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the OpenAI-compatible API."""
    import uvicorn

    for key, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"MODELMUX_SERVER__{key}"] = str(value)
    _, config = _load(config_path)
    if config.path is not None:
        os.environ["MODELMUX_CONFIG_FILE"] = str(config.path.resolve())
    server = config.server
    from modelmux.logs import setup_logging

    setup_logging(server.log_level, server.log_format)
    from modelmux.shutdown import exit_zero_after_graceful_shutdown

    exit_zero_after_graceful_shutdown()
    from modelmux.slow_clients import GuardedHttpToolsProtocol

    created = _metrics_dir(server.workers)
    try:
        uvicorn.run(
            "modelmux.app:create_app_from_env",
            factory=True,
            host=server.host,
            port=server.port,
            workers=server.workers,
            log_config=None,
            log_level=server.log_level,
            access_log=False,
            ws="none",  # no WebSocket routes: skips importing a WebSocket implementation
            # uvicorn's httptools protocol with header and body read deadlines (slow clients)
            http=GuardedHttpToolsProtocol,
            # uvicorn types it int; it is a timeout in seconds and takes fractions as well.
            timeout_graceful_shutdown=server.shutdown_timeout_seconds,  # type: ignore[arg-type]
        )
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _metrics_dir(workers: int) -> Path | None:
    """Prepare prometheus-client multiprocess mode before workers start; the directory to remove at exit.

    With several workers each one writes its samples under ``PROMETHEUS_MULTIPROC_DIR`` and
    ``/metrics`` merges them. A directory the operator set is emptied of an earlier run's
    files and kept; otherwise a private one is made and removed when the server stops.
    """
    from loguru import logger

    from modelmux.metrics import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        logger.info("metrics: multiprocess mode, samples in {} ({})", path, MULTIPROC_ENV)
        return None
    if workers <= 1:
        return None
    created = Path(tempfile.mkdtemp(prefix="modelmux-metrics-"))
    os.environ[MULTIPROC_ENV] = str(created)
    logger.info("metrics: multiprocess mode for {} workers, samples in {}", workers, created)
    return created


@main.group("config")
def config_group() -> None:
    """Create, show and check the configuration."""


@config_group.command("init")
@click.option("--preset", default=None, help="echo, vertex, vllm, azure, bedrock, or any installed preset")
@click.option("--non-interactive", is_flag=True, help="ask nothing; use the preset's detected defaults")
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False),
    default="modelmux.toml",
    show_default=True,
)
@click.option("--force", is_flag=True, help="overwrite an existing file")
def config_init(preset: str | None, non_interactive: bool, output: str, force: bool) -> None:
    """Write a configuration file from a preset."""
    plugins = _plugins()
    presets = plugins.registry.presets
    if preset is None:
        if non_interactive:
            preset = "echo"
        else:
            from rich.prompt import Prompt

            preset = Prompt.ask("Preset", choices=sorted(presets), default="echo", console=_console())
    if preset not in presets:
        _fail(f"unknown preset {preset!r}. Installed presets: {', '.join(sorted(presets))}.")
    path = Path(output)
    if path.exists() and not force:
        _fail(f"{path} exists. Use --force to overwrite it, or --output to write elsewhere.")
    text = presets[preset].render({"interactive": not non_interactive})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    _console().print(
        f"wrote [bold]{escape(str(path))}[/] (preset {escape(preset)}). "
        f"Check it with: modelmux config validate --config {escape(str(path))}"
    )


@config_group.command("show")
@config_option
@click.option("--sources", is_flag=True, help="also print where each value came from")
def config_show(config_path: str | None, sources: bool) -> None:
    """Print the merged configuration (secrets as ***)."""
    _, config = _load(config_path)
    _console().print(tomli_w.dumps(shown(config)), highlight=False, markup=False)
    if sources:
        table = _table("key", "source")
        for key, origin in sorted(config.sources.items()):
            table.add_row(escape(key), escape(origin))
        _console().print(table)


@config_group.command("validate")
@config_option
def config_validate(config_path: str | None) -> None:
    """Check the configuration; exit status 0 when it is valid."""
    _, config = _load(config_path)
    where = config.path or "no file (echo provider only)"
    _console().print(
        f"[green]ok[/]: {escape(str(where))}: {len(config.providers)} provider(s), "
        f"{len(config.settings.models)} model(s)"
    )


@main.command("plugins")
def plugins_cmd() -> None:
    """List installed plugins, what each registers, and load errors."""
    plugins = _plugins()
    table = _table("name", "version", "package", "registers", "status")
    for info in plugins.infos:
        status = f"[red]error: {escape(info.error)}[/]" if info.error else ("built-in" if info.builtin else "ok")
        table.add_row(
            escape(info.name),
            escape(info.version),
            escape(info.distribution),
            escape("\n".join(info.registers)),
            status,
        )
    _console().print(table)
    if plugins.errors:
        sys.exit(1)


@main.command("models")
@config_option
@click.option(
    "--provider",
    "provider_name",
    default=None,
    help="list the models this provider's upstream offers",
)
def models_cmd(config_path: str | None, provider_name: str | None) -> None:
    """List configured models, or an upstream's models with --provider."""
    plugins, config = _load(config_path)
    if provider_name is None:
        table = _table("model", "provider", "upstream model", "fallbacks")
        for name, model in sorted(config.settings.models.items()):
            targets = model.targets()
            table.add_row(
                escape(name),
                escape(", ".join(d.provider for d in targets)),
                escape(", ".join(d.model for d in targets)),
                escape(", ".join(model.fallbacks)),
            )
        _console().print(table)
        return
    if provider_name not in config.providers:
        _fail(f"no provider named {provider_name!r}. Configured: {', '.join(sorted(config.providers))}.")
    _upstream_ready(config)

    async def fetch() -> list[str]:
        from modelmux.gateway import Gateway

        gw = Gateway(config, plugins)
        await gw.start()
        try:
            if provider_name in gw.provider_errors:
                _fail(f"provider {provider_name} could not start: {gw.provider_errors[provider_name]}")
            return await gw.providers[provider_name].list_models()
        finally:
            await gw.aclose()

    from modelmux.errors import ModelMuxError

    try:
        names = asyncio.run(fetch())
    except ModelMuxError as exc:
        _fail(exc.message)
    for name in names:
        _console().print(name, highlight=False, markup=False, soft_wrap=True)


def _upstream_ready(config: Config) -> None:
    """Before a command talks to upstreams: their answers may quote our credentials back."""
    from modelmux.app import register_secrets

    register_secrets(config)


def _run_checks(config_path: str | None, topic: str | None) -> None:
    from modelmux.doctor import run_checks

    plugins, config = _load(config_path)
    _upstream_ready(config)
    checks = asyncio.run(run_checks(config, plugins))
    table = _table("", "where", "check", "detail / fix")
    failed = 0
    for where, check in checks:
        if topic and check.topic != topic:
            continue
        mark = "[green]ok[/]" if check.ok else "[red]FAIL[/]"
        failed += not check.ok
        detail = escape(check.detail)
        if not check.ok and check.fix:
            detail = (
                f"{detail}\n[yellow]fix:[/] {escape(check.fix)}" if detail else f"[yellow]fix:[/] {escape(check.fix)}"
            )
        table.add_row(mark, escape(where), escape(check.name), detail)
    _console().print(table)
    if failed:
        _fail(f"{failed} check(s) failed")


@main.command("doctor")
@config_option
def doctor(config_path: str | None) -> None:
    """Check configuration, credentials and upstream reachability, with a fix for each failure."""
    _run_checks(config_path, None)


@main.command("troubleshoot")
@config_option
@click.argument("topic", required=False, type=click.Choice(["config", "auth", "network"]))
def troubleshoot(config_path: str | None, topic: str | None) -> None:
    """Like doctor, limited to one topic."""
    _run_checks(config_path, topic)
