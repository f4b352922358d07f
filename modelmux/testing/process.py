"""A real ``modelmux serve`` process for end-to-end tests: what users run, with its own logs.

``run_gateway`` serves the app in the test's process; this starts the command itself (its
argument parsing, uvicorn set-up and logging), on a free loopback port, with its standard
output and error in files a test can search (e.g. for a secret that must not be there).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from modelmux.testing.servers import free_port


@dataclass
class ServeProcess:
    root: str
    """``http://127.0.0.1:PORT``."""
    config_path: Path
    stdout: Path
    stderr: Path
    proc: subprocess.Popen[bytes]

    def logs(self) -> str:
        """Everything the process wrote so far, standard output then standard error."""
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def request_line(self, text: str, timeout: float = 5) -> str:
        """The first log line holding ``text`` (e.g. ``"POST /v1/chat/completions -> 200"``), waited
        for: a request's line is written once its answer has gone out, a moment after the client has it."""
        end = time.monotonic() + timeout
        while True:
            found = [line for line in self.logs().splitlines() if text in line]
            if found:
                return found[0]
            if time.monotonic() > end:
                raise AssertionError(f"no log line holds {text!r}:\n{self.logs()}")
            time.sleep(0.02)


@contextlib.contextmanager
def serve_process(
    config: dict[str, Any] | str,
    directory: Path,
    *,
    env: dict[str, str] | None = None,
    ready_seconds: float = 30,
) -> Iterator[ServeProcess]:
    """Run ``modelmux serve --config FILE --port N`` until the block ends (SIGTERM, then SIGKILL).

    ``config`` is a TOML string or a dict written as TOML into ``directory``, where the
    process's ``stdout.log`` and ``stderr.log`` go too. Ready once ``/health/live`` answers.
    """
    path = directory / "modelmux.toml"
    path.write_text(config if isinstance(config, str) else tomli_w.dumps(config))
    port = free_port()
    stdout, stderr = directory / "stdout.log", directory / "stderr.log"
    exe = Path(sys.executable).parent / "modelmux"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [str(exe), "serve", "--config", str(path), "--port", str(port)],
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
        )
    served = ServeProcess(f"http://127.0.0.1:{port}", path, stdout, stderr, proc)
    try:
        _wait_ready(served, ready_seconds)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def metric(root: str, name: str, **labels: str) -> float:
    """The gateway's ``/metrics`` at ``root``: the sum of the samples named ``name`` (e.g.
    ``modelmux_tokens_total``) whose labels include ``labels``; 0 when there is none yet."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{root}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _wait_ready(served: ServeProcess, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if served.proc.poll() is not None:
            raise RuntimeError(f"modelmux serve exited {served.proc.returncode}:\n{served.logs()}")
        try:
            if httpx.get(f"{served.root}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"modelmux serve did not start:\n{served.logs()}")
