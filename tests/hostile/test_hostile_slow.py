"""Slow and silent clients (issue 15): a connection that trickles its headers or its body, or
sends nothing, is cut once ``server.header_timeout_seconds`` / ``server.body_timeout_seconds``
pass (1 s each in this gateway), instead of being held as long as the client likes. Raw sockets
against a real ``modelmux serve``; the bound is generous, the behaviour is what is checked."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx

from modelmux.testing.process import ServeProcess

#: Far above the 1 s bounds: a connection still open after this was not cut.
GIVE_UP = 15.0


def connect(served: ServeProcess) -> socket.socket:
    url = urlsplit(served.root)
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    sock.setblocking(False)
    return sock


def trickle_until_closed(socks: list[socket.socket], byte: bytes | None) -> dict[int, bytes]:
    """Send ``byte`` on every open socket every 0.1 s (None: stay silent) until the server closes
    each one; what each received before its end, by index (missing: still open at GIVE_UP)."""
    got: dict[int, bytes] = {}
    buffers = [b""] * len(socks)
    end = time.monotonic() + GIVE_UP
    while len(got) < len(socks) and time.monotonic() < end:
        for i, sock in enumerate(socks):
            if i in got:
                continue
            try:
                if byte is not None:
                    sock.send(byte)
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:  # reset or broken pipe: closed by the server
                got[i] = buffers[i]
                continue
            if data:
                buffers[i] += data
            else:
                got[i] = buffers[i]
        time.sleep(0.1)
    for sock in socks:
        sock.close()
    return got


def test_trickled_headers_are_cut_with_a_408(served: ServeProcess) -> None:
    socks = [connect(served) for _ in range(20)]
    for sock in socks:
        sock.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
    got = trickle_until_closed(socks, b"a")
    assert len(got) == len(socks), "some trickling connections were still open"
    for answer in got.values():
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"server.header_timeout_seconds" in answer and b'"code":"request_timeout"' in answer


def test_a_silent_connection_is_cut(served: ServeProcess) -> None:
    got = trickle_until_closed([connect(served) for _ in range(5)], None)
    assert len(got) == 5


def test_a_trickled_body_is_cut_and_logged(served: ServeProcess, api: httpx.Client) -> None:
    auth = api.headers["authorization"].encode()
    socks = [connect(served) for _ in range(10)]
    for sock in socks:
        sock.send(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\n"
            b"authorization: " + auth + b'\r\ncontent-length: 5000\r\n\r\n{"model": '
        )
    got = trickle_until_closed(socks, b" ")
    assert len(got) == len(socks), "some trickling bodies were still being read"
    logs = served.logs()
    assert "request body did not arrive within 1 s (server.body_timeout_seconds)" in logs
    assert "-> 408" in logs


def test_a_slow_body_without_a_key_is_refused_at_once(served: ServeProcess) -> None:
    sock = connect(served)
    sock.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\ncontent-length: 5000\r\n\r\n{")
    got = trickle_until_closed([sock], None)
    assert got[0].startswith(b"HTTP/1.1 401"), got[0][:200]


def test_kept_alive_connections_still_serve_many_requests(api: httpx.Client) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(3):
        assert api.post("/v1/chat/completions", json=body).status_code == 200
        time.sleep(0.6)  # idle gaps adding up past the 1 s header bound: only a request's own time counts
