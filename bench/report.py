"""The benchmark's report: Markdown tables with verdicts against the targets, and the plot."""

from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import Any

from scenarios import MODES, SCENARIOS, SYSTEMS, modes

# The targets (issue 9). A benchmark, not a test: a missed target is reported, not an error.
MIN_RATIO = 0.60  # modelmux req/s over the bare forwarder's, every cell
MAX_ADDED_P50_MS = 0.5  # modelmux p50 over direct, at 1 connection
MAX_RSS_MB = 100.0  # per worker, through the long run
IDLE_SLACK_MB = 10.0  # "back to idle": after the run, within this of the idle reading before it
MAX_STARTUP_S = 1.5  # spawn -> first 200 from /health/ready
MIN_WORKERS_GAIN = 1.05  # --workers 2 over 1: "rises"

Result = dict[str, Any]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _f(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def _rps(x: float) -> str:
    return f"{x:,.0f}"


def find(cells: list[Result], **key: Any) -> Result | None:
    for r in cells:
        if all(r.get(k) == v for k, v in key.items()):
            return r
    return None


def main_table(cells: list[Result], connections: list[int]) -> tuple[str, list[str]]:
    """The scenario table and the failed targets (as sentences)."""
    cols = [
        "scenario",
        "mode",
        "conns",
        "req/s direct",
        "req/s bare",
        "req/s modelmux",
        "modelmux / bare (CPU)",
        "p50 ms direct / bare / modelmux",
        "p99 ms direct / bare / modelmux",
        "added p50 ms",
        "CPU µs/req bare / modelmux",
        "targets",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|---|---|" + "---:|" * (len(cols) - 3) + "---|"]
    misses: list[str] = []
    for scenario in SCENARIOS:
        for mode in modes(scenario):
            for conns in connections:
                by = {s: find(cells, system=s, scenario=scenario, mode=mode, connections=conns) for s in SYSTEMS}
                d, b, m = by["direct"], by["bare"], by["modelmux"]
                if d is None or b is None or m is None:
                    continue
                ratio = m["rps"] / b["rps"] if b["rps"] else 0.0
                added = m["p50_ms"] - d["p50_ms"]
                checks = [f"ratio {verdict(ratio >= MIN_RATIO)}"]
                where = f"{scenario} {mode} at {conns} connection{'s' if conns > 1 else ''}"
                if ratio < MIN_RATIO:
                    misses.append(f"throughput {where}: {ratio:.2f} of the bare forwarder (target ≥ {MIN_RATIO})")
                if conns == 1:
                    checks.append(f"added p50 {verdict(added <= MAX_ADDED_P50_MS)}")
                    if added > MAX_ADDED_P50_MS:
                        misses.append(f"added p50 {where}: {added:.2f} ms (target ≤ {MAX_ADDED_P50_MS} ms)")
                bc, mc = b["cpu_us_per_req"], m["cpu_us_per_req"]
                cpu = f"{bc or 0:,.0f} / {mc or 0:,.0f}"
                cpu_ratio = f"{bc / mc:.2f}" if bc and mc else "-"
                row = [
                    scenario,
                    mode,
                    str(conns),
                    _rps(d["rps"]),
                    _rps(b["rps"]),
                    _rps(m["rps"]),
                    f"{ratio:.2f} ({cpu_ratio})",
                    " / ".join(_f(r["p50_ms"]) for r in (d, b, m)),
                    " / ".join(_f(r["p99_ms"]) for r in (d, b, m)),
                    f"{added:+.2f}" if conns == 1 else f"({added:+.2f})",
                    cpu,
                    ", ".join(checks),
                ]
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines), misses


def sweep_table(sweep: list[Result]) -> str:
    concs = sorted({r["connections"] for r in sweep})
    cols = ["system", "mode", *[f"c={c}" for c in concs]]
    lines = ["| " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(concs)]
    for mode in MODES:
        for system in ("bare", "modelmux"):
            row = [system, mode]
            for c in concs:
                r = find(sweep, system=system, mode=mode, connections=c)
                row.append("-" if r is None else f"{_rps(r['rps'])} ({_f(r['p50_ms'])} / {_f(r['p99_ms'])})")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def rss_section(rss: Result) -> tuple[str, list[str]]:
    idle, peak, after = rss["idle_mb"], rss["peak_mb"], rss["after_mb"]
    under = peak < MAX_RSS_MB
    back = after <= idle + IDLE_SLACK_MB
    text = (
        f"| idle before | peak during {rss['seconds']} s at {rss['connections']} connections | "
        f"{rss['after_seconds']} s after | requests | targets |\n|---:|---:|---:|---:|---|\n"
        f"| {idle:.1f} MB | {peak:.1f} MB | {after:.1f} MB | {rss['requests']:,} | "
        f"peak < {MAX_RSS_MB:.0f} MB {verdict(under)}, back to idle (+{IDLE_SLACK_MB:.0f} MB) {verdict(back)} |"
    )
    misses = []
    if not under:
        misses.append(f"memory: peak RSS {peak:.1f} MB (target < {MAX_RSS_MB:.0f} MB)")
    if not back:
        misses.append(f"memory: {after:.1f} MB after the run, idle was {idle:.1f} MB")
    return text, misses


def startup_section(runs: list[Result]) -> tuple[str, list[str]]:
    """Spawn to the first 200 from /health/ready, and the RSS then, per plugin set; the target is on the default."""
    lines = [
        "| plugins loaded | median s to ready | runs (s) | CPU s until ready | RSS when ready, MB | target |",
        "|---|---:|---|---:|---:|---|",
    ]
    misses = []
    for plugins in dict.fromkeys(r["plugins"] for r in runs):
        rows = [r for r in runs if r["plugins"] == plugins]
        med = median(r["seconds"] for r in rows)
        label = "every installed plugin (default)" if plugins == "all" else f"only {plugins} (MODELMUX_LOAD_PLUGINS)"
        check = f"< {MAX_STARTUP_S} s {verdict(med < MAX_STARTUP_S)}" if plugins == "all" else "-"
        times = ", ".join(f"{r['seconds']:.2f}" for r in rows)
        cpu, rss = median(r["cpu_s"] for r in rows), median(r["rss_mb"] for r in rows)
        lines.append(f"| {label} | {med:.2f} | {times} | {cpu:.2f} | {rss:.1f} | {check} |")
        if plugins == "all" and med >= MAX_STARTUP_S:
            misses.append(f"startup: median {med:.2f} s (target < {MAX_STARTUP_S} s)")
    return "\n".join(lines), misses


def workers_section(rows: list[Result]) -> tuple[str, list[str]]:
    lines = [
        "| mode | conns | req/s 1 worker | req/s 2 workers | 2 / 1 | p50 ms 1 / 2 | peak RSS MB per worker (2) "
        "| rises |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    misses = []
    for mode in MODES:
        one = find(rows, workers=1, mode=mode)
        two = find(rows, workers=2, mode=mode)
        if one is None or two is None:
            continue
        gain = two["rps"] / one["rps"] if one["rps"] else 0.0
        rss = ", ".join(f"{v:.0f}" for v in two.get("worker_peak_rss_mb", []))
        lines.append(
            f"| {mode} | {one['connections']} | {_rps(one['rps'])} | {_rps(two['rps'])} | {gain:.2f} | "
            f"{_f(one['p50_ms'])} / {_f(two['p50_ms'])} | {rss} | {verdict(gain >= MIN_WORKERS_GAIN)} |"
        )
        if gain < MIN_WORKERS_GAIN:
            misses.append(f"--workers 2: {gain:.2f} times the throughput of one worker ({mode})")
    return "\n".join(lines), misses


def plot(sweep: list[Result], path: Path, title: str) -> None:
    """Throughput and p50/p99 latency against concurrency, bare forwarder vs ModelMux (passthrough)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = {"bare": "tab:gray", "modelmux": "tab:blue"}
    styles = {"nonstream": "-", "stream": "--"}
    for system in ("bare", "modelmux"):
        for mode in MODES:
            rows = sorted(
                (r for r in sweep if r["system"] == system and r["mode"] == mode), key=lambda r: r["connections"]
            )
            if not rows:
                continue
            x = [r["connections"] for r in rows]
            label = f"{system} {mode}"
            ax_t.plot(x, [r["rps"] for r in rows], styles[mode], color=colors[system], marker="o", label=label)
            ax_l.plot(
                x, [r["p50_ms"] for r in rows], styles[mode], color=colors[system], marker="o", label=f"{label} p50"
            )
            ax_l.plot(
                x,
                [r["p99_ms"] for r in rows],
                styles[mode],
                color=colors[system],
                marker="^",
                alpha=0.45,
                label=f"{label} p99",
            )
    for ax in (ax_t, ax_l):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections")
        ax.grid(True, which="both", alpha=0.3)
    concs = sorted({r["connections"] for r in sweep})
    for ax in (ax_t, ax_l):
        ax.set_xticks(concs, [str(c) for c in concs])
    ax_t.set_ylabel("requests/s")
    ax_t.set_ylim(bottom=0)
    ax_t.set_title("Throughput (passthrough, 1 worker)")
    ax_l.set_yscale("log")
    ax_l.set_ylabel("latency, ms (log)")
    ax_l.set_title("Latency p50 (circles) and p99 (triangles)")
    ax_t.legend(fontsize=8)
    ax_l.legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
