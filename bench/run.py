"""Benchmark driver: fake upstream + forwarder per client + load generator.

Every component is a separate process. For each repeat, for each system
(``direct`` = load generator straight to the fake upstream, then one forwarder
per ``--clients`` entry, or an external ``--target``), it runs the load at each
concurrency in non-stream and stream mode and prints a Markdown table of the
median-throughput run per cell, with latency added versus ``direct`` and the
server's CPU time per request (median over rounds; only for servers this driver
started, and the least noise-sensitive figure on a shared machine).

Examples::

    python bench/run.py                                   # all clients
    python bench/run.py --clients aiohttp --repeat 1 -d 3 # quick check
    # an already-running gateway that forwards to http://127.0.0.1:18000:
    python bench/run.py --target http://127.0.0.1:8080
    # or let the driver start it ({port} and {upstream} are filled in):
    python bench/run.py --target-cmd "my-server --port {port} --upstream {upstream}"
    # ModelMux itself (what `make bench` runs), configured through MODELMUX_* env vars:
    python bench/run.py --gateway
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
PATH = "/v1/chat/completions"
READY_BODY = b'{"model":"fake-model-1","messages":[{"role":"user","content":"ping"}]}'
Result = dict[str, Any]  # one load.py JSON line


@dataclass
class System:
    name: str
    base_url: str
    cmd: list[str] | None  # None: nothing to start (direct, or --target)
    env: dict[str, str] | None = None


def wait_ready(base_url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    host, port = base_url.removeprefix("http://").rstrip("/").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
            conn.request(
                "POST",
                PATH,
                body=READY_BODY,
                headers={"content-type": "application/json"},
            )
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base_url} not ready after {timeout}s")


def spawn(
    cmd: list[str],
    cpus: set[int] | None,
    stdout: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=stdout, env=env)
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)
    return proc


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and all its live descendants (uvicorn workers too)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += (int(stats[p][11]) + int(stats[p][12])) / tick  # utime, stime
        todo += children.get(p, [])
    return total


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_load(
    url: str,
    concurrency: int,
    stream: bool,
    args: argparse.Namespace,
    cpus: set[int] | None,
) -> Result:
    cmd = [
        PY,
        str(HERE / "load.py"),
        "--url",
        url,
        "-c",
        str(concurrency),
        "-d",
        str(args.duration),
    ]
    cmd += ["--warmup", str(args.warmup)] + (["--stream"] if stream else [])
    proc = spawn(cmd, cpus, stdout=subprocess.PIPE)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {cmd}")
    result: Result = json.loads(out)
    return result


def measure(
    system: System,
    proc: subprocess.Popen[bytes] | None,
    mode: str,
    conc: int,
    args: argparse.Namespace,
    load_cpus: set[int] | None,
) -> Result:
    """One load run; adds the server's CPU per answered request when we started it."""
    cpu0 = cpu_seconds(proc.pid) if proc else 0.0
    r = run_load(system.base_url + PATH, conc, mode == "stream", args, load_cpus)
    r.update(system=system.name, cpu_us_per_req=None)
    if proc and r["requests_incl_warmup"]:
        cpu = cpu_seconds(proc.pid) - cpu0
        r["cpu_us_per_req"] = round(cpu / r["requests_incl_warmup"] * 1e6, 1)
    return r


def pick_median(runs: list[Result]) -> Result:
    """The run with the median req/s (lower median for even counts), plus the spread.

    CPU per request is the median over runs on its own: it is the figure that noisy
    neighbours distort least.
    """
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rps_min"], chosen["rps_max"] = ordered[0]["rps"], ordered[-1]["rps"]
    chosen["rps_median"] = median(r["rps"] for r in runs)
    cpu = [r["cpu_us_per_req"] for r in runs if r.get("cpu_us_per_req") is not None]
    chosen["cpu_us_per_req"] = median(cpu) if cpu else None
    return chosen


def fmt(x: object, signed: bool = False) -> str:
    if not isinstance(x, int | float) or math.isnan(x):  # missing / no samples
        return "-"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def table(
    cells: dict[tuple[str, str, int], Result],
    systems: list[str],
    modes: list[str],
    concs: list[int],
) -> str:
    cols = ["client", "mode", "conc", "req/s median (min-max)", "CPU µs/req", "p50 ms", "p99 ms"]
    cols += ["added p50 ms", "added p99 ms", "TTFB p50 ms", "errors"]
    lines = ["| " + " | ".join(cols) + " |", "|---|---|" + "---:|" * (len(cols) - 2)]
    for mode in modes:
        for conc in concs:
            base = cells.get(("direct", mode, conc))
            for name in systems:
                r = cells[(name, mode, conc)]
                add50 = add99 = None
                if base is not None and name != "direct":
                    add50 = r["p50_ms"] - base["p50_ms"]
                    add99 = r["p99_ms"] - base["p99_ms"]
                rps = f"{r['rps_median']:,.0f} ({r['rps_min']:,.0f}-{r['rps_max']:,.0f})"
                cpu = r.get("cpu_us_per_req")
                cpu_s = "-" if cpu is None else f"{cpu:,.0f}"
                row = [name, mode, str(conc), rps, cpu_s, fmt(r["p50_ms"]), fmt(r["p99_ms"])]
                row += [
                    fmt(add50, True),
                    fmt(add99, True),
                    fmt(r.get("ttfb_p50_ms")),
                    str(r["errors"]),
                ]
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


GATEWAY_CMD = "{bindir}/modelmux serve --port {port}"


def gateway_env(upstream: str) -> dict[str, str]:
    """Configure ModelMux through the environment: every model goes to the fake upstream."""
    return os.environ | {
        "MODELMUX_PROVIDERS__BENCH__TYPE": "openai_compatible",
        "MODELMUX_PROVIDERS__BENCH__BASE_URL": f"{upstream}/v1",
        "MODELMUX_ROUTER__DEFAULT_PROVIDER": "bench",
        "MODELMUX_SERVER__LOG_LEVEL": "warning",
    }


def systems_from_args(args: argparse.Namespace, upstream: str) -> list[System]:
    local = f"http://127.0.0.1:{args.port}"
    systems = [] if args.no_direct else [System("direct", upstream, None)]
    if args.target_cmd:
        cmd = args.target_cmd.format(port=args.port, upstream=upstream)
        systems.append(System(args.target_name, local, shlex.split(cmd)))
    elif args.target:
        systems.append(System(args.target_name, args.target.rstrip("/"), None))
    else:
        # With --gateway the bare forwarders stay in the rounds: they are what ModelMux is measured against.
        for client in args.clients.split(","):
            fwd = [PY, str(HERE / "forwarder.py"), "--client", client]
            fwd += ["--port", str(args.port), "--upstream", upstream]
            systems.append(System(f"bare-{client}" if args.gateway else client, local, fwd))
    if args.gateway:
        cmd = GATEWAY_CMD.format(bindir=Path(PY).parent, port=args.port)
        systems.append(System("modelmux", local, shlex.split(cmd), gateway_env(upstream)))
    return systems


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = ap.add_argument
    add(
        "--clients",
        default="httpx,httpx-aiohttp,aiohttp",
        help="forwarder clients, comma-separated",
    )
    add(
        "--gateway",
        action="store_true",
        help=f"also start ModelMux ({GATEWAY_CMD}) and compare it with the bare forwarders",
    )
    add("--target", help="base URL of an already-running server forwarding to the fake upstream")
    add("--target-cmd", help="command starting the server; {port} and {upstream} are substituted")
    add("--target-name", default="target", help="row label for --target / --target-cmd")
    add("--concurrency", default="1,32", help="comma-separated worker counts")
    add("--modes", default="nonstream,stream")
    add("-d", "--duration", type=float, default=6.0, help="measured seconds per cell")
    add("--warmup", type=float, default=1.0, help="uncounted seconds per cell")
    add("--repeat", type=int, default=3, help="rounds; the median-req/s run is reported")
    add("--upstream-port", type=int, default=18000)
    add("--port", type=int, default=18001, help="port of the forwarder / started server")
    add("--no-direct", action="store_true", help="skip the direct-to-upstream baseline")
    add("--pin", action="store_true", help="CPU 0: system under test; CPU 1: upstream + load")
    add("--json", type=Path, help="write every raw result here")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    upstream = f"http://127.0.0.1:{args.upstream_port}"
    systems = systems_from_args(args, upstream)
    modes = args.modes.split(",")
    concs = [int(c) for c in args.concurrency.split(",")]
    sut_cpus, side_cpus = ({0}, {1}) if args.pin else (None, None)

    up = spawn([PY, str(HERE / "fake_upstream.py"), "--port", str(args.upstream_port)], side_cpus)
    raw: list[Result] = []
    try:
        wait_ready(upstream, up)
        for rnd in range(1, args.repeat + 1):  # rounds interleave systems, so drift hits all
            for system in systems:
                proc = spawn(system.cmd, sut_cpus, env=system.env) if system.cmd else None
                try:
                    wait_ready(system.base_url, proc)
                    for mode, conc in itertools.product(modes, concs):
                        r = measure(system, proc, mode, conc, args, side_cpus)
                        r.update(round=rnd)
                        raw.append(r)
                        print(
                            f"[round {rnd}] {system.name:14} {mode:9} c={conc:<3} "
                            f"{r['rps']:>9} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
                            f"cpu/req {r['cpu_us_per_req']} µs  errors {r['errors']}",
                            flush=True,
                        )
                finally:
                    if proc is not None:
                        stop(proc)
    finally:
        stop(up)

    if args.json:
        args.json.write_text(json.dumps(raw, indent=1) + "\n")
    cells: dict[tuple[str, str, int], Result] = {}
    for system, mode, conc in itertools.product(systems, modes, concs):
        key = (system.name, mode, conc)
        cells[key] = pick_median([r for r in raw if (r["system"], r["mode"], r["concurrency"]) == key])
    print()
    print(table(cells, [s.name for s in systems], modes, concs))


if __name__ == "__main__":
    main()
