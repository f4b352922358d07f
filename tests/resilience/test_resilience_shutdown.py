"""Graceful shutdown of a real ``modelmux serve`` process on SIGTERM."""

from __future__ import annotations

import signal
import socket
import threading
import time

import httpx

WORDS = " ".join(f"w{i}" for i in range(12))


def config(delay_ms: int, shutdown_timeout: float, tmp: object) -> str:
    return f"""
[server]
shutdown_timeout_seconds = {shutdown_timeout}
log_level = "info"

[state]
backend = "memory"

[providers.echo]
type = "echo"
delay_ms = {delay_ms}

[models.echo]
provider = "echo"
model = "echo"
"""


def refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def stream_in_thread(
    root: str, frames: list[bytes], first: threading.Event, errors: list[BaseException]
) -> threading.Thread:
    def run() -> None:
        body = {"model": "echo", "messages": [{"role": "user", "content": WORDS}], "stream": True}
        try:
            with httpx.stream("POST", f"{root}/v1/chat/completions", json=body, timeout=30) as resp:
                for chunk in resp.iter_raw():
                    frames.append(chunk)
                    first.set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            first.set()

    t = threading.Thread(target=run)
    t.start()
    return t


def test_sigterm_stops_accepting_and_lets_a_running_stream_finish(serve, tmp_path) -> None:
    gw = serve(config(delay_ms=80, shutdown_timeout=20, tmp=tmp_path))
    frames: list[bytes] = []
    errors: list[BaseException] = []
    first = threading.Event()
    t = stream_in_thread(gw.root, frames, first, errors)
    assert first.wait(10)
    gw.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while not refuses(gw.port) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert refuses(gw.port)  # new connections are no longer accepted...
    t.join(20)
    body = b"".join(frames)
    assert not errors
    assert body.rstrip().endswith(b"data: [DONE]")  # ...while the running stream completed
    assert b"w11" in body
    assert gw.proc.wait(20) == 0


def test_sigterm_cuts_streams_that_outlive_the_shutdown_deadline_and_exits_0(serve, tmp_path) -> None:
    gw = serve(config(delay_ms=1000, shutdown_timeout=0.5, tmp=tmp_path))  # the stream needs ~12 s
    frames: list[bytes] = []
    errors: list[BaseException] = []
    first = threading.Event()
    t = stream_in_thread(gw.root, frames, first, errors)
    assert first.wait(10)
    sent = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(10) == 0
    assert time.monotonic() - sent < 9  # it did not wait for the stream to end
    t.join(10)
    assert b"[DONE]" not in b"".join(frames)
