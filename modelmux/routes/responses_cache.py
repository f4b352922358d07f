"""The response cache's part in ``POST /v1/responses`` (docs/caching.md, "The Responses API").

A Responses answer is not a pure function of the request body: ``previous_response_id``
names a stored conversation, and every answer is itself stored under a new id that a
client may continue from. So:

* the key is the body without ``previous_response_id`` and ``store``, plus the
  *resolved* conversation those stand for (item ids left out: they name items, they
  are not what the model reads); the same id can never hit a conversation it does not
  name, and a different id over the same conversation may;
* a hit is answered as a new response: a fresh response id, fresh output item ids and
  ``created_at``, ``previous_response_id`` and ``store`` as this request says; it is
  stored like any other answer (unless ``store: false``), so continuing from it works;
* only ``completed`` and ``incomplete`` answers are stored, never ``failed`` ones.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from modelmux.sse import SSEParser, encode
from modelmux.translate.responses import new_id

#: Body fields the key leaves out: replaced by the resolved history, or rewritten on a hit.
KEY_EXCLUDED = frozenset({"previous_response_id", "store"})
#: A Response in one of these states is a complete answer worth keeping.
STORABLE_STATUSES = frozenset({"completed", "incomplete"})
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})

Save = Callable[[dict[str, Any]], Awaitable[None]]


def key_body(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in KEY_EXCLUDED}


def key_context(previous: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The resolved conversation for the key, without item ids (None: a fresh conversation)."""
    if not previous:
        return None
    return [
        {k: v for k, v in item.items() if k != "id"} if item.get("type") != "item_reference" else item
        for item in previous
    ]


class Renamer:
    """Makes a cached Response (or its stream events) a new response for this request."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.response_id = new_id("resp")
        self.now = int(time.time())
        self.previous_response_id = body.get("previous_response_id")
        self.store = body.get("store") is not False
        self._items: dict[str, str] = {}

    def item_id(self, old: str) -> str:
        new = self._items.get(old)
        if new is None:
            prefix, sep, _ = old.partition("_")
            new = self._items[old] = new_id(prefix if sep else "item")
        return new

    def item(self, item: dict[str, Any]) -> dict[str, Any]:
        if isinstance(item.get("id"), str):
            return {**item, "id": self.item_id(item["id"])}
        return item

    def response(self, resp: dict[str, Any]) -> dict[str, Any]:
        out = {
            **resp,
            "id": self.response_id,
            "created_at": self.now,
            "previous_response_id": self.previous_response_id,
            "store": self.store,
            "output": [self.item(i) if isinstance(i, dict) else i for i in resp.get("output") or []],
        }
        if out.get("completed_at"):
            out["completed_at"] = self.now
        return out

    def event(self, event: dict[str, Any]) -> dict[str, Any]:
        out = dict(event)
        if isinstance(out.get("response"), dict):
            out["response"] = self.response(out["response"])
        if isinstance(out.get("item"), dict):
            out["item"] = self.item(out["item"])
        if isinstance(out.get("item_id"), str):
            out["item_id"] = self.item_id(out["item_id"])
        return out


async def replay_stream(stored: bytes, renamer: Renamer, save: Save | None) -> AsyncIterator[bytes]:
    """A stored Responses stream as a new response: each event renamed, the final Response
    stored before the terminal event goes out (a client may continue from it at once)."""
    parser = SSEParser()
    for ev in [*parser.feed(stored), *parser.flush()]:
        event = orjson.loads(ev.data)
        if not isinstance(event, dict):
            continue
        event = renamer.event(event)
        if save is not None and event.get("type") in TERMINAL_EVENTS and isinstance(event.get("response"), dict):
            await save(event["response"])
        yield encode(event, event.get("type"))


def storable(resp: dict[str, Any] | None) -> bool:
    return isinstance(resp, dict) and resp.get("status") in STORABLE_STATUSES
