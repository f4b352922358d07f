"""Instructions per request of ``modelmux serve``, counted by valgrind's callgrind.

CPU time on the shared 2-core machine moves by 10% from one run to the next; the number of
instructions a request executes does not (about 0.3%), so this separates changes of a few µs.
It starts ``bench/fake_upstream.py`` and ``modelmux serve`` with the bench's configuration
(``scenarios.gateway_config``: API key, metrics, the access log at info to a file, every
installed plugin) under ``valgrind --tool=callgrind``, and for each kind of request: sends
``--warmup`` requests, zeroes the counters, sends ``--requests`` more, dumps the counters
(``callgrind_control``), and prints the instructions per request. The dumps stay in
``--out`` for ``callgrind_annotate`` (C functions only: Python 3.11 code shows as the
interpreter's functions).

    .venv/bin/python bench/instructions.py                       # this checkout
    .venv/bin/python bench/instructions.py --modelmux /other/checkout/.venv/bin/modelmux
    .venv/bin/python bench/instructions.py --bare                # the bare forwarder, for comparison

Counts are of user-space instructions in the server process, so the kernel's share of the
socket calls does not show; one idle cell (no requests, as long as the last cell took)
shows what the server's background tasks cost meanwhile (the web UI's traffic sampler is
set to once an hour: it costs per second, not per request). Requests go one at a time (``-c 1``)
or from ``--connections`` threads at once.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import tomli_w
from procs import Procs, free_port, http_ok, wait_until
from scenarios import gateway_config, target, write_service_account

HERE = Path(__file__).resolve().parent
KINDS = {
    "passthrough": ("passthrough", False),
    "passthrough-stream": ("passthrough", True),
    "translation": ("translation", False),
    "translation-stream": ("translation", True),
    "embeddings": ("embeddings", False),
}


def callgrind_control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=300)


def has_module(python: Path, name: str) -> bool:
    code = f"import sys\ntry:\n    import {name}\nexcept ImportError:\n    sys.exit(1)"
    return subprocess.run([str(python), "-c", code], cwd=tempfile.gettempdir(), check=False).returncode == 0


def send(port: int, path: str, body: bytes, headers: dict[str, str], count: int, connections: int) -> None:
    """``count`` requests over ``connections`` keep-alive connections; raises on any non-200."""
    errors: list[str] = []

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            for _ in range(n):
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}: {raw[:200]!r}")
                    return
        finally:
            conn.close()

    share = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]
    threads = [threading.Thread(target=client, args=(n,)) for n in share if n]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])


def total(dump: Path) -> int:
    """The instructions (Ir) a callgrind dump counted."""
    m = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.M)
    if m is None:
        raise RuntimeError(f"no totals in {dump}")
    return int(m[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modelmux", default=str(Path(sys.executable).parent / "modelmux"), help="the gateway's script")
    ap.add_argument("--kinds", default="passthrough,passthrough-stream,translation", help=",".join(KINDS))
    ap.add_argument("--requests", type=int, default=400, help="counted requests per kind")
    ap.add_argument("--warmup", type=int, default=100, help="uncounted requests before each kind")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="where the dumps go (default: a new temporary folder)")
    ap.add_argument("--bare", action="store_true", help="count the bare forwarder (bench/forwarder.py) instead")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="instructions-"))
    out.mkdir(parents=True, exist_ok=True)
    script = Path(args.modelmux)
    python = script.parent / "python"  # the gateway's own venv interpreter (a console script is a shebang)
    with Procs() as procs, tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        up_port, port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        fake = procs.start([sys.executable, str(HERE / "fake_upstream.py"), "--port", str(up_port)])
        wait_until(http_ok(up_port, "GET", "/v1/models"), fake)
        key_file = write_service_account(tmp / "service-account.json", f"{upstream}/token")
        config = tmp / "modelmux.toml"
        config.write_text(tomli_w.dumps(gateway_config(upstream, key_file, tmp, port=port)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMUX_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env["XDG_DATA_HOME"] = str(tmp / "xdg")
        # The web UI's traffic sampler reads every metric every 5 s: a cost per second, not per
        # request, that valgrind's slowdown would spread over the requests of a cell.
        if has_module(python, "modelmux.ui.traffic"):  # older versions have no web UI (and refuse the key)
            env["MODELMUX_SERVER__UI__STATS_INTERVAL_SECONDS"] = "3600"
        env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/cg.%p"]
        if args.bare:
            cmd += [sys.executable, str(HERE / "forwarder.py"), "--port", str(port), "--upstream", upstream]
        else:
            cmd += [str(python), str(script), "serve", "--config", str(config)]
        with (tmp / "modelmux.log").open("ab") as log:
            server = procs.start(cmd, env=env, stdout=log, stderr=log)
        system = "bare" if args.bare else "modelmux"
        if args.bare:  # it has no readiness probe: a request it answers
            first = target(system, "passthrough", False)
            probe = http_ok(port, "POST", first.path, first.body_bytes, {"authorization": first.auth})
        else:
            probe = http_ok(port, "GET", "/health/ready")
        wait_until(probe, server, timeout=600, interval=0.5)
        callgrind_control(server.pid, "--instr=on")
        print(f"{'bare forwarder' if args.bare else script} under callgrind; dumps in {out}", flush=True)
        longest = 0.0
        for n, kind in enumerate(args.kinds.split(","), start=1):
            scenario, stream = KINDS[kind]
            t = target(system, scenario, stream)
            headers = {"content-type": "application/json", "authorization": t.auth}
            send(port, t.path, t.body_bytes, headers, args.warmup, args.connections)
            time.sleep(1)  # the last answer's log line and metrics are written after it was sent
            callgrind_control(server.pid, "--zero")
            start = time.monotonic()
            send(port, t.path, t.body_bytes, headers, args.requests, args.connections)
            time.sleep(1)
            callgrind_control(server.pid, f"--dump={kind}")
            longest = max(longest, time.monotonic() - start)
            ir = total(out / f"cg.{server.pid}.{n}")
            per_request = ir / args.requests / 1000
            print(f"{kind:<20} c={args.connections:<3} {per_request:9.1f}k instructions/request", flush=True)
        callgrind_control(server.pid, "--zero")
        time.sleep(longest)
        callgrind_control(server.pid, "--dump=idle")
        ir = total(out / f"cg.{server.pid}.{n + 1}")
        print(f"{'idle':<20} {ir / longest / 1000:9.1f}k instructions/s over {longest:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
