"""Graceful shutdown: on SIGTERM stop accepting, let requests and streams finish, exit 0.

uvicorn does the draining: on SIGTERM it closes the listening sockets, lets every
connection finish its response (streams included) for up to
``server.shutdown_timeout_seconds`` (its ``timeout_graceful_shutdown``), then cancels
what is left and runs the app's shutdown (providers, stores, the upstream client).
Afterwards it re-raises the signal so that the process dies of it (status 143, or -15
to a parent). A server that shut down as asked should report success to its
supervisor (Kubernetes, systemd, Docker), so ``modelmux serve`` turns that re-raised
SIGTERM into exit status 0.
"""

from __future__ import annotations

import signal
from types import FrameType


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def exit_zero_after_graceful_shutdown() -> None:
    """Install before ``uvicorn.run``: uvicorn restores this handler when it is done, then re-raises."""
    signal.signal(signal.SIGTERM, _exit_zero)
