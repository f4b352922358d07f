"""Stored responses of the Responses API in the configured state store.

One key per response (``responses:v1:<id>``) holds the Response object, the client
key that created it, and the whole conversation up to and including it (the stored
items of its predecessors, its own input items, its output). A response is therefore
self-contained: continuing from it is one read, whatever happened to its
predecessors (expired, deleted), and it works across restarts and replicas wherever
the store is shared. Every value lives ``[state] ttl_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from modelmux.errors import NotFoundError
from modelmux.stores import StateStore

KEY_PREFIX = "responses:v1:"


@dataclass
class StoredResponse:
    response: dict[str, Any]
    #: Every item of the conversation up to this response, its output included.
    history: list[dict[str, Any]]
    #: ``history[input_start:input_end]`` are this response's own input items.
    input_start: int
    input_end: int
    owner: str | None

    @property
    def input_items(self) -> list[dict[str, Any]]:
        return self.history[self.input_start : self.input_end]


def not_found(response_id: str, param: str | None = None) -> NotFoundError:
    what = "Previous response" if param == "previous_response_id" else "Response"
    return NotFoundError(
        f"{what} with id '{response_id}' not found. It was never stored (store=false), it was deleted, "
        "it expired, or it belongs to another API key.",
        param=param,
    )


class Conversations:
    def __init__(self, store: StateStore, ttl_seconds: float) -> None:
        self.store = store
        self.ttl = ttl_seconds

    async def get(self, response_id: str, owner: str | None) -> StoredResponse | None:
        raw = await self.store.get(KEY_PREFIX + response_id)
        if raw is None:
            return None
        data = orjson.loads(raw)
        if data.get("owner") != owner:
            return None  # another key's response does not exist for this caller
        return StoredResponse(
            data["response"], data["history"], data["input_start"], data["input_end"], data.get("owner")
        )

    async def require(self, response_id: str, owner: str | None, param: str | None = None) -> StoredResponse:
        found = await self.get(response_id, owner)
        if found is None:
            raise not_found(response_id, param)
        return found

    async def save(
        self,
        response: dict[str, Any],
        previous: list[dict[str, Any]],
        input_items: list[dict[str, Any]],
        owner: str | None,
    ) -> None:
        history = previous + input_items + list(response.get("output") or [])
        record = {
            "response": response,
            "history": history,
            "input_start": len(previous),
            "input_end": len(previous) + len(input_items),
            "owner": owner,
        }
        await self.store.set(KEY_PREFIX + str(response["id"]), orjson.dumps(record), ttl=self.ttl)

    async def delete(self, response_id: str, owner: str | None) -> bool:
        if await self.get(response_id, owner) is None:
            return False
        return await self.store.delete(KEY_PREFIX + response_id)
