"""ModelMux benchmark (what `make bench` runs): the gateway against the upstream and a bare forwarder.

Starts the fixed-answer upstream (``fake_upstream.py``), the bare FastAPI + aiohttp forwarder
(``forwarder.py``) and ``modelmux serve`` (1 worker, configured with both the ``vllm`` and
the ``vertex`` provider, an API key, metrics and access logging on), checks that every
system answers every request correctly, then measures with wrk, in one run:

1. every scenario (passthrough, embeddings, translation) x mode (non-stream, stream; embeddings
   non-stream only) x connections
   {1, 32} on ``direct`` (the upstream itself), ``bare`` and ``modelmux``, the three
   systems back to back in each cell so that drift on the machine hits all of them;
2. a concurrency sweep (passthrough, bare and modelmux) for the plot;
3. ``--workers 2`` against 1 worker (passthrough, 32 connections);
4. the resident memory of a fresh worker before, through and after a long run
   at 32 connections (all four request kinds at once);
5. the time from spawning ``modelmux serve`` to its first 200 from ``/health/ready``.

Prints Markdown tables with verdicts against the targets, keeps every raw result in
``bench/results/`` and draws the sweep to ``docs/img/bench-concurrency.png``. The exit
status is non-zero only when something failed to run or answered wrongly, not for a
missed target.

Usage: ``python bench/run.py`` (about 11 minutes) or ``python bench/run.py --quick`` (2 to 3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import report
import tomli_w
from loadgen import wrk, wrk_binary
from procs import Procs, cpu_seconds, descendants, free_port, http_ok, loadavg, request, rss_mb, wait_until
from scenarios import (
    KINDS,
    MODES,
    SCENARIOS,
    SYSTEMS,
    Target,
    check_answer,
    check_embeddings,
    gateway_config,
    modes,
    target,
    write_service_account,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
MODELMUX = str(Path(PY).parent / "modelmux")
PNG = ROOT / "docs" / "img" / "bench-concurrency.png"
CONFIGURED_PLUGINS = "vllm,vertex"  # the entry points the bench configuration uses
Result = dict[str, Any]


@dataclass
class Plan:
    seconds: int  # measured seconds per cell of the main table
    warmup: int  # uncounted seconds before each cell
    sweep: list[int]
    sweep_seconds: int
    sweep_warmup: int
    rss_seconds: int
    after_seconds: int
    startup_runs: int
    connections: list[int] = field(default_factory=lambda: [1, 32])

    @staticmethod
    def full() -> Plan:
        return Plan(10, 2, [1, 2, 4, 8, 16, 32, 64], 5, 1, 60, 10, 5)

    @staticmethod
    def quick() -> Plan:
        return Plan(2, 1, [1, 8, 64], 2, 0, 8, 3, 2)


class Bench:
    def __init__(self, plan: Plan, procs_: Procs, tmp: Path, bare_client: str, log: Callable[[str], None]) -> None:
        self.plan = plan
        self.procs = procs_
        self.tmp = tmp
        self.bare_client = bare_client
        self.log = log
        self.ports = {"direct": free_port(), "bare": free_port(), "modelmux": free_port()}
        self.pids: dict[str, int] = {}
        self.gateway: subprocess.Popen[bytes] | None = None
        self.log_file = tmp / "modelmux.log"
        self.config_file = tmp / "modelmux.toml"
        self.bodies: dict[tuple[str, str, bool], tuple[Target, Path]] = {}
        self.problems: list[str] = []
        self.key_file = tmp / "service-account.json"

    # -- processes -------------------------------------------------------------------------

    @property
    def upstream(self) -> str:
        return f"http://127.0.0.1:{self.ports['direct']}"

    def start_upstream(self) -> None:
        proc = self.procs.start([PY, str(HERE / "fake_upstream.py"), "--port", str(self.ports["direct"])])
        wait_until(http_ok(self.ports["direct"], "GET", "/v1/models"), proc)
        self.pids["direct"] = proc.pid
        write_service_account(self.key_file, f"{self.upstream}/token")

    def start_bare(self) -> None:
        cmd = [PY, str(HERE / "forwarder.py"), "--client", self.bare_client]
        cmd += ["--port", str(self.ports["bare"]), "--upstream", self.upstream]
        proc = self.procs.start(cmd)
        t, body = self.body("bare", "passthrough", False)
        wait_until(http_ok(self.ports["bare"], "POST", t.path, body.read_bytes(), self.headers(t)), proc)
        self.pids["bare"] = proc.pid

    def gateway_env(self, plugins: str | None = None) -> dict[str, str]:
        # Only the config file configures it: no MODELMUX_* (or metrics dir) from the caller's shell.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMUX_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env["XDG_DATA_HOME"] = str(self.tmp / "xdg")
        if plugins:
            env["MODELMUX_LOAD_PLUGINS"] = plugins
        return env

    def spawn_gateway(
        self, port: int, workers: int, plugins: str | None = None
    ) -> tuple[subprocess.Popen[bytes], float]:
        """``modelmux serve``; returns it once ``/health/ready`` answers 200, and the seconds that took.

        ``plugins``: load only these entry points (``MODELMUX_LOAD_PLUGINS``); default: every installed one."""
        cfg = gateway_config(self.upstream, self.key_file, self.tmp, port=port, workers=workers)
        self.config_file.write_text(tomli_w.dumps(cfg))
        cmd = [MODELMUX, "serve", "--config", str(self.config_file)]
        with self.log_file.open("ab") as out:  # O_APPEND: the driver may truncate it between cells
            start = time.perf_counter()
            proc = self.procs.start(cmd, env=self.gateway_env(plugins), stdout=out, stderr=out)
        wait_until(http_ok(port, "GET", "/health/ready"), proc, timeout=60, interval=0.005)
        return proc, time.perf_counter() - start

    def start_gateway(self, workers: int = 1) -> float:
        if self.gateway is not None:
            self.procs.stop(self.gateway)
        self.gateway, seconds = self.spawn_gateway(self.ports["modelmux"], workers)
        self.pids["modelmux"] = self.gateway.pid
        return seconds

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server itself with 1 worker, else its worker children."""
        assert self.gateway is not None
        tree = descendants(self.gateway.pid)
        workers = [p for p in tree[1:] if _is_uvicorn_worker(p)]
        return workers or [self.gateway.pid]

    # -- requests --------------------------------------------------------------------------

    def body(self, system: str, scenario: str, stream: bool) -> tuple[Target, Path]:
        key = (system, scenario, stream)
        if key not in self.bodies:
            t = target(system, scenario, stream)
            path = self.tmp / f"body-{system}-{scenario}-{'stream' if stream else 'json'}.json"
            path.write_bytes(t.body_bytes)
            self.bodies[key] = (t, path)
        return self.bodies[key]

    @staticmethod
    def headers(t: Target) -> dict[str, str]:
        return {"content-type": "application/json", "authorization": t.auth}

    def verify(self) -> None:
        """One request of every kind through every system, checked; raises on a wrong answer."""
        from fake_upstream import TEXT

        for system in SYSTEMS:
            for scenario, stream in KINDS:
                t, body = self.body(system, scenario, stream)
                status, _, raw = request(self.ports[system], "POST", t.path, body.read_bytes(), self.headers(t))
                what = f"{system} {scenario} {'stream' if stream else 'non-stream'}"
                if status != 200:
                    raise RuntimeError(f"{what}: HTTP {status}: {raw[:300]!r}")
                if scenario == "embeddings":
                    problem = check_embeddings(raw)
                else:
                    anthropic = scenario == "translation" and system != "modelmux"
                    problem = check_answer(raw, stream=stream, anthropic=anthropic, text=TEXT)
                if problem:
                    raise RuntimeError(f"{what}: {problem}")
        status, _, raw = request(self.ports["modelmux"], "GET", "/metrics")
        if status != 200 or b"modelmux_http_requests_total" not in raw:
            raise RuntimeError("modelmux /metrics does not show modelmux_http_requests_total")
        if self.access_lines() < 4:
            raise RuntimeError(f"modelmux wrote no access-log lines to {self.log_file}")
        self.log("verified: every system answers every request kind correctly; metrics and access log on")

    def access_lines(self) -> int:
        """Access-log lines of answered requests since the last call (the log file is emptied)."""
        data = self.log_file.read_bytes()
        os.truncate(self.log_file, 0)
        return data.count(b" -> 200 in ")

    # -- measuring -------------------------------------------------------------------------

    def cell(self, system: str, scenario: str, mode: str, conns: int, seconds: int, warmup: int) -> Result:
        t, body = self.body(system, scenario, mode == "stream")
        url = f"http://127.0.0.1:{self.ports[system]}{t.path}"
        if warmup:
            wrk(url, body, t.auth, conns, warmup)
        pid = self.pids[system] if system != "direct" else None
        if system == "modelmux":
            self.access_lines()
        cpu0 = cpu_seconds(pid) if pid else 0.0
        load = loadavg()[0]
        r = wrk(url, body, t.auth, conns, seconds)
        r.update(system=system, scenario=scenario, mode=mode, load1=load, cpu_us_per_req=None)
        if pid and r["requests"]:
            r["cpu_us_per_req"] = round((cpu_seconds(pid) - cpu0) / r["requests"] * 1e6, 1)
        if system == "modelmux":
            r["access_log_lines"] = self.access_lines()
        if r["non2xx"] or r["socket_errors"]:
            self.problems.append(f"{system} {scenario} {mode} c={conns}: {r['errors']}")
        self.log(
            f"  {system:9} {scenario:11} {mode:9} c={conns:<3} {r['rps']:>9,.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
            f"p99 {r['p99_ms']:7.2f} ms  cpu/req {r['cpu_us_per_req'] or 0:>6,.0f} µs  load {load:.1f}"
        )
        return r

    def main_cells(self, rounds: int) -> list[Result]:
        self.log(f"main table: {self.plan.seconds} s per cell after {self.plan.warmup} s warm-up, {rounds} round(s)")
        out = []
        for rnd in range(1, rounds + 1):  # rounds repeat every cell, so drift hits all of them
            for scenario in SCENARIOS:
                for mode in modes(scenario):
                    for conns in self.plan.connections:
                        for system in SYSTEMS:
                            r = self.cell(system, scenario, mode, conns, self.plan.seconds, self.plan.warmup)
                            out.append(r | {"round": rnd})
        return out

    def sweep(self) -> list[Result]:
        p = self.plan
        self.log(f"concurrency sweep {p.sweep}: passthrough, {p.sweep_seconds} s per point")
        out = []
        for mode in MODES:
            for conns in p.sweep:
                for system in ("bare", "modelmux"):
                    out.append(self.cell(system, "passthrough", mode, conns, p.sweep_seconds, p.sweep_warmup))
        return out

    def workers(self) -> list[Result]:
        p = self.plan
        self.log(f"--workers 1 vs 2: passthrough, 32 connections, {p.seconds} s")
        rows = []
        for workers in (1, 2):
            self.start_gateway(workers)
            for mode in MODES:
                with RssSampler(self.worker_pids) as sampler:
                    r = self.cell("modelmux", "passthrough", mode, 32, p.seconds, p.warmup)
                r.update(workers=workers, worker_peak_rss_mb=sorted(round(v, 1) for v in sampler.peak.values()))
                rows.append(r)
        return rows

    def memory(self) -> Result:
        """A fresh worker: RSS idle, through a long run at 32 connections (4 x 8: every kind), and after."""
        p = self.plan
        self.log(f"memory: fresh worker, {p.rss_seconds} s at 32 connections, then {p.after_seconds} s idle")
        self.start_gateway(1)
        self.verify_gateway_only()
        time.sleep(2)
        (pid,) = self.worker_pids()
        idle = rss_mb(pid)
        results: list[Result] = []
        kinds = list(KINDS)

        def run(scenario: str, stream: bool) -> None:
            t, body = self.body("modelmux", scenario, stream)
            url = f"http://127.0.0.1:{self.ports['modelmux']}{t.path}"
            results.append(wrk(url, body, t.auth, 32 // len(kinds), p.rss_seconds))

        with RssSampler(lambda: [pid], interval=0.5) as sampler:
            threads = [threading.Thread(target=run, args=kind) for kind in kinds]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        series = sampler.series.get(pid, [])
        after_series = []
        for _ in range(p.after_seconds * 2):
            time.sleep(0.5)
            after_series.append(round(rss_mb(pid), 2))
        self.access_lines()
        errors = sum(r["non2xx"] + r["socket_errors"] for r in results)
        if errors or len(results) != len(kinds):
            self.problems.append(f"memory run: {errors} errors, {len(results)} of {len(kinds)} wrk runs finished")
        out = {
            "seconds": p.rss_seconds,
            "connections": 32 // len(kinds) * len(kinds),
            "requests": sum(r["requests"] for r in results),
            "rps": round(sum(r["rps"] for r in results), 1),
            "idle_mb": round(idle, 2),
            "peak_mb": round(max([*series, idle]), 2),
            "after_mb": after_series[-1],
            "after_seconds": p.after_seconds,
            "series_mb": series,
            "after_series_mb": after_series,
        }
        self.log(
            f"  idle {out['idle_mb']:.1f} MB, peak {out['peak_mb']:.1f} MB, after {out['after_mb']:.1f} MB "
            f"({out['requests']:,} requests, {out['rps']:,.0f} req/s)"
        )
        return out

    def verify_gateway_only(self) -> None:
        for scenario, stream in KINDS:
            t, body = self.body("modelmux", scenario, stream)
            status, _, raw = request(self.ports["modelmux"], "POST", t.path, body.read_bytes(), self.headers(t))
            if status != 200:
                raise RuntimeError(f"modelmux {scenario}: HTTP {status}: {raw[:300]!r}")

    def startup(self) -> list[Result]:
        """Fresh starts, alternating every installed plugin (the default) and only the two the config uses."""
        n = self.plan.startup_runs
        self.log(f"startup: {n} + {n} starts of `modelmux serve` until /health/ready is 200")
        if self.gateway is not None:
            self.procs.stop(self.gateway)
            self.gateway = None
        runs = []
        for _ in range(n):
            for plugins in (None, CONFIGURED_PLUGINS):
                proc, seconds = self.spawn_gateway(free_port(), 1, plugins)
                rss, cpu = rss_mb(proc.pid), cpu_seconds(proc.pid)
                self.procs.stop(proc)
                runs.append(
                    {"plugins": plugins or "all", "seconds": round(seconds, 3), "cpu_s": cpu, "rss_mb": round(rss, 1)}
                )
                self.log(
                    f"  plugins {plugins or 'all':12} ready after {seconds:.2f} s (CPU {cpu:.2f} s), RSS {rss:.1f} MB"
                )
        self.access_lines()
        return runs


def _is_uvicorn_worker(pid: int) -> bool:
    try:
        cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmdline  # not multiprocessing's resource tracker


class RssSampler:
    """Samples the RSS of some processes in a thread; keeps each one's series and peak."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.series: dict[int, list[float]] = {}
        self.peak: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in self.pids():
                value = rss_mb(pid)
                if value:
                    self.series.setdefault(pid, []).append(round(value, 2))
                    self.peak[pid] = max(self.peak.get(pid, 0.0), value)


def median_runs(runs: list[Result]) -> list[Result]:
    """Per cell, the run with the median req/s (the lower one of an even count), with the range seen."""
    groups: dict[tuple[Any, ...], list[Result]] = {}
    for r in runs:
        groups.setdefault((r["system"], r["scenario"], r["mode"], r["connections"]), []).append(r)
    out = []
    for group in groups.values():
        ordered = sorted(group, key=lambda r: r["rps"])
        out.append(ordered[(len(ordered) - 1) // 2] | {"rps_min": ordered[0]["rps"], "rps_max": ordered[-1]["rps"]})
    return out


def machine() -> Result:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions: dict[str, str | None] = {}
    for dist in ("modelmux", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "aiohttp", "pydantic", "loguru"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[:1]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "wrk": wrk_version[0] if wrk_version else None,
        "commit": commit.stdout.strip() or None,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) stop the run like Ctrl-C, so the started processes are cleaned up."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def render(result: Result, png: str | None) -> tuple[str, list[str]]:
    """The Markdown report and the missed targets."""
    plan = result["plan"]
    misses: list[str] = []
    loads = [r["load1"] for r in result["cells"] + result["sweep"]]
    m = result["machine"]
    parts = [
        f"# ModelMux benchmark, {result['started']}",
        "",
        f"{m['cpus']} x {m['cpu']}, Python {m['python']}, commit {m['commit']}; load average (1 min) during the "
        f"cells {min(loads):.1f} to {max(loads):.1f}; {plan['seconds']} s per cell after {plan['warmup']} s warm-up "
        f"({plan['rounds']} round{'s' if plan['rounds'] > 1 else ''}, median shown); "
        "wrk, 1 thread; ModelMux 1 worker with auth, metrics and access log on.",
        "",
        "## Scenarios",
        "",
    ]
    table, miss = report.main_table(result["cells"], plan["connections"])
    misses += miss
    parts += [
        table,
        "",
        "Added p50 = ModelMux p50 minus direct p50 (the target applies at 1 connection; at 32 it is queueing, "
        "shown in brackets). CPU µs/req: the server process's CPU time per answered request.",
        "",
    ]
    if result.get("sweep"):
        parts += ["## Concurrency sweep (passthrough): req/s (p50 / p99 ms)", "", report.sweep_table(result["sweep"])]
        parts += [""] + ([f"![throughput and latency against concurrency]({png})", ""] if png else [])
    if result.get("workers"):
        text, miss = report.workers_section(result["workers"])
        misses += miss
        parts += ["## --workers 2 against 1 (passthrough, 32 connections)", "", text, ""]
    if result.get("memory"):
        text, miss = report.rss_section(result["memory"])
        misses += miss
        parts += ["## Memory of one worker", "", text, ""]
    if result.get("startup"):
        text, miss = report.startup_section(result["startup"])
        misses += miss
        parts += ["## Start-up", "", text, ""]
    parts += ["## Targets", ""]
    parts += [f"- MISSED: {x}" for x in misses] or ["- all met"]
    if result["problems"]:
        parts += ["", "## Errors", ""] + [f"- {x}" for x in result["problems"]]
    return "\n".join(parts) + "\n", misses


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short cells and fewer points: 2 to 3 minutes")
    ap.add_argument(
        "--bare-client", choices=("aiohttp", "httpx"), default="aiohttp", help="the bare forwarder's client"
    )
    ap.add_argument("--rounds", type=int, default=1, help="repeat the main table; each cell shows its median run")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: sweep, workers, memory, startup")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where the raw JSON and the report go")
    ap.add_argument("--png", type=Path, help=f"the plot (default: {PNG.relative_to(ROOT)}; with --quick: in --results)")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    if wrk_binary() is None:
        print(
            "bench: wrk is not installed. Install it with: apt-get install wrk (or run `make bench`)", file=sys.stderr
        )
        return 2
    plan = Plan.quick() if args.quick else Plan.full()
    skip = {s for s in args.skip.split(",") if s}
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = f"bench-{stamp}" + ("-quick" if args.quick else "")
    png = args.png or (args.results / f"{name}.png" if args.quick else PNG)

    def log(line: str) -> None:
        print(line, flush=True)

    result: Result = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "plan": plan.__dict__ | {"rounds": args.rounds},
        "bare_client": args.bare_client,
        "machine": machine(),
        "load_before": loadavg(),
        "cells": [],
        "runs": [],
        "sweep": [],
        "workers": [],
        "memory": None,
        "startup": [],
        "problems": [],
    }
    t0 = time.perf_counter()
    try:
        with sigterm_as_interrupt(), Procs() as running, tempfile.TemporaryDirectory(prefix="modelmux-bench-") as tmp:
            bench = Bench(plan, running, Path(tmp), args.bare_client, log)
            log(
                f"starting: fake upstream :{bench.ports['direct']}, bare forwarder :{bench.ports['bare']}, "
                f"modelmux :{bench.ports['modelmux']}"
            )
            bench.start_upstream()
            bench.start_bare()
            bench.start_gateway(1)
            bench.verify()
            result["runs"] = bench.main_cells(args.rounds)
            result["cells"] = median_runs(result["runs"])
            if "sweep" not in skip:
                result["sweep"] = bench.sweep()
            if "workers" not in skip:
                result["workers"] = bench.workers()
            if "memory" not in skip:
                result["memory"] = bench.memory()
            if "startup" not in skip:
                result["startup"] = bench.startup()
            result["problems"] = bench.problems
            status, _, stats = request(bench.ports["direct"], "GET", "/stats")
            result["upstream_stats"] = json.loads(stats) if status == 200 else None
    except KeyboardInterrupt:
        print("\nbench: interrupted; the processes it started are stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    result["load_after"] = loadavg()
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)

    if result["sweep"]:
        m, loads = result["machine"], [r["load1"] for r in result["sweep"]]
        title = (
            f"ModelMux vs bare {args.bare_client} forwarder, {m['cpus']} x {m['cpu']}, {stamp}, "
            f"load average {min(loads):.1f} to {max(loads):.1f}"
        )
        report.plot(result["sweep"], png, title)
    text, misses = render(result, os.path.relpath(png, args.results) if result["sweep"] else None)
    result["missed_targets"] = misses
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.results / f"{name}.md").write_text(text)
    print()
    print(text)
    print(f"raw results: {args.results / (name + '.json')}; report: {name}.md; plot: {png if result['sweep'] else '-'}")
    print(f"took {result['wall_seconds']:.0f} s")
    if result["problems"]:
        print("bench: some requests failed during the load (see Errors above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
