"""Running wrk (Debian's package) with ``bench/wrk_post.lua`` and reading its JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "wrk_post.lua"
MARK = "BENCH_JSON "


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def wrk(
    url: str,
    body_file: Path,
    auth: str,
    connections: int,
    seconds: int,
    threads: int = 1,
    timeout_s: int = 10,
) -> dict[str, Any]:
    """One closed-loop wrk run; requests/s, latency percentiles (ms) and error counts."""
    exe = wrk_binary()
    if exe is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk); `make bench` installs it")
    cmd = [exe, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s"]
    cmd += ["-s", str(SCRIPT), url]
    env = os.environ | {"BENCH_BODY": str(body_file), "BENCH_AUTH": auth}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    raw = json.loads(lines[-1][len(MARK) :])
    secs = raw["duration_us"] / 1e6
    errors = raw["errors"]
    lat = raw["latency_us"]
    return {
        "connections": connections,
        "seconds": round(secs, 3),
        "requests": raw["requests"],
        "rps": round(raw["requests"] / secs, 1) if secs else 0.0,
        "p50_ms": lat["50"] / 1000,
        "p90_ms": lat["90"] / 1000,
        "p99_ms": lat["99"] / 1000,
        "p999_ms": lat["99.9"] / 1000,
        "max_ms": raw["latency_max_us"] / 1000,
        "non2xx": errors["status"],
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "errors": errors,
    }
