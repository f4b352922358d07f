"""The last requests this process answered, in memory, for the web UI's "Recent requests" (docs/ui.md).

The middleware appends one tuple per request, the facts of its log line, to a bounded deque
(``server.ui.recent_requests``): the request path is benchmarked, so nothing more is done
there. Records are built only when the UI asks. Bodies and message contents are never kept;
probes, scrapes and the UI's own requests are not recorded.
"""

from __future__ import annotations

import operator
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from modelmux.context import RequestContext

#: Paths whose requests are not recorded: they would drown the requests people look for.
UNRECORDED_PATHS = ("/health", "/metrics", "/ui")

#: Facts from the request's context a record keeps (the log line's), in this order.
STATE_FIELDS = RequestContext.LOG_FIELDS
#: All of them in one C call: a tuple.
_facts = operator.attrgetter(*STATE_FIELDS)

Entry = tuple[float, str, str, int, float, tuple[Any, ...]]


class RecentRequests:
    """A ring buffer of request records; the oldest falls out when it is full."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: deque[Entry] = deque(maxlen=size)

    def add(self, method: str, path: str, status: int, elapsed: float, ctx: RequestContext) -> None:
        """One request ended (called by the middleware, on the request path: keep it this cheap).

        ``path`` is kept only when no route matched (the route template names the others)."""
        endpoint = ctx.endpoint
        facts = _facts(ctx)
        where = path[:200] if endpoint == "unmatched" else endpoint
        self.entries.append((time.time(), method, where, status, elapsed, facts))

    def records(self) -> list[dict[str, Any]]:
        """Newest first, as dicts with the log line's field names."""
        return [_record(entry) for entry in reversed(self.entries)]


def _record(entry: Entry) -> dict[str, Any]:
    ts, method, path, status, elapsed, facts = entry
    record: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z",
        "method": method,
        "endpoint": path,
        "status": status,
        "latency_ms": round(elapsed * 1000, 2),
    }
    record.update(zip(STATE_FIELDS, facts, strict=True))
    return record


def matching(
    records: Iterable[dict[str, Any]], *, model: str | None, status: str | None, key_id: str | None
) -> list[dict[str, Any]]:
    """The records that pass the UI's filters: ``status`` is a code (``429``) or a class (``4xx``)."""
    out = []
    for rec in records:
        if model and rec.get("model") != model:
            continue
        if key_id and rec.get("key_id") != key_id:
            continue
        if status and not _status_matches(rec["status"], status):
            continue
        out.append(rec)
    return out


def _status_matches(code: int, wanted: str) -> bool:
    wanted = wanted.strip().lower()
    if len(wanted) == 3 and wanted.endswith("xx") and wanted[0].isdigit():
        return code // 100 == int(wanted[0])
    if wanted == "error":
        return code >= 400
    return str(code) == wanted
