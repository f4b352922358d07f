"""Stored responses of the Responses API in the configured state store.

One key per response (``responses:v1:<id>``) holds a record: the Response object (so
its output items), the response's own input items, the id of the response it continued
(``previous``), the client key that created it, and two running totals (``depth``,
``conversation_bytes``) that let a too deep or too large conversation be refused before
it is read. Continuing walks the chain back from ``previous_response_id``; every item is
stored once, so a conversation of N turns takes O(N) bytes, not O(N^2).

Records of the earlier format (``history``: the whole conversation in each record) are
still read: such a record ends the walk, its history standing for everything before it.

Saving a response makes its predecessors live ``ttl_seconds`` from then again (``touch``),
so a conversation that goes on never loses its beginning to expiry. A record that is gone
anyway (deleted, or evicted by the store's size limit) makes continuing from a later
response a 404 naming the missing one.

Bytes written per client key are counted in time buckets (the store's counters, shared
by replicas) against ``[state] max_bytes_per_key`` over the last ``ttl_seconds``.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelmux.config import StateSettings
from modelmux.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError, RateLimitError
from modelmux.stores import StateStore

KEY_PREFIX = "responses:v1:"
QUOTA_PREFIX = "responses:quota:"
RECORD_VERSION = 2
#: Quota buckets per ``ttl_seconds``: usage sums the current bucket and this many before it.
BUCKETS = 4
#: Touches in flight at once when a save renews a long chain.
_TOUCH_BATCH = 64
#: Ids ModelMux mints (``new_id``): uuid4 hex after a known prefix. Only records of the
#: earlier format need this guess; newer ones say which fields ModelMux added.
_MINTED_ID = re.compile(r"^(msg|fc|fco|ctc|ctco|item|rs)_[0-9a-f]{32}$")

#: Item id -> the fields of that item ModelMux added (``id``, ``status``).
Minted = dict[str, list[str]]


@dataclass
class StoredResponse:
    id: str
    response: dict[str, Any]
    #: This response's own input items.
    input_items: list[dict[str, Any]]
    previous_id: str | None
    owner: str | None
    #: Responses in the conversation up to and including this one.
    depth: int
    #: Bytes of all items of the conversation up to and including this one's output.
    conversation_bytes: int
    minted: Minted
    #: Bytes of the record in the store.
    size: int
    #: Quota bucket the record was counted in (None: the earlier format, not counted).
    bucket: int | None = None
    #: Earlier format: the whole conversation before ``input_items``.
    legacy_history: list[dict[str, Any]] | None = None
    #: Gateway tool items of its output -> the call and text the model saw (``tool_loop.py``).
    tool_calls: dict[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> list[dict[str, Any]]:
        """This response's own items: its input, then its output."""
        return self.input_items + list(self.response.get("output") or [])


@dataclass
class History:
    """The conversation a new response continues (empty without ``previous_response_id``)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    minted: Minted = field(default_factory=dict)
    #: Response ids of the chain, newest first (renewed when the next response is saved).
    chain: list[str] = field(default_factory=list)
    depth: int = 0
    bytes: int = 0
    head: str | None = None
    #: Gateway tool item id -> the call and text the model saw, over the whole conversation.
    tool_calls: dict[str, Any] = field(default_factory=dict)


def not_found(response_id: str, param: str | None = None) -> NotFoundError:
    what = "Previous response" if param == "previous_response_id" else "Response"
    return NotFoundError(
        f"{what} with id '{response_id}' not found. It was never stored (store=false), it was deleted, "
        "it expired, or it belongs to another API key.",
        param=param,
    )


def _parse(response_id: str, raw: bytes) -> StoredResponse:
    data = orjson.loads(raw)
    if "history" in data:  # the earlier format: everything up to this response in one record
        history = data["history"]
        start, end = data["input_start"], data["input_end"]
        minted: Minted = {}
        for item in history:
            item_id = item.get("id")
            if isinstance(item_id, str) and _MINTED_ID.match(item_id):
                minted[item_id] = ["id", "status"]
        return StoredResponse(
            id=response_id,
            response=data["response"],
            input_items=history[start:end],
            previous_id=None,
            owner=data.get("owner"),
            depth=1,
            conversation_bytes=len(raw),
            minted=minted,
            size=len(raw),
            legacy_history=history[:start],
        )
    return StoredResponse(
        id=response_id,
        response=data["response"],
        input_items=data["input"],
        previous_id=data.get("previous"),
        owner=data.get("owner"),
        depth=int(data["depth"]),
        conversation_bytes=int(data["conversation_bytes"]),
        minted=data.get("minted") or {},
        size=len(raw),
        bucket=data.get("bucket"),
        tool_calls=data.get("tool_calls") or {},
    )


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


class Conversations:
    def __init__(self, store: StateStore, settings: StateSettings, max_request_bytes: int) -> None:
        self.store = store
        self.settings = settings
        self.ttl = settings.ttl_seconds
        self.max_request_bytes = max_request_bytes
        self._bucket_seconds = settings.ttl_seconds / BUCKETS

    # -- reading -----------------------------------------------------------------------------

    async def get(self, response_id: str, owner: str | None) -> StoredResponse | None:
        raw = await self.store.get(KEY_PREFIX + response_id)
        if raw is None:
            return None
        stored = _parse(response_id, raw)
        if stored.owner != owner:
            return None  # another key's response does not exist for this caller
        return stored

    async def require(self, response_id: str, owner: str | None, param: str | None = None) -> StoredResponse:
        found = await self.get(response_id, owner)
        if found is None:
            raise not_found(response_id, param)
        return found

    async def history(self, head: StoredResponse) -> History:
        """The conversation up to and including ``head``, read back along the chain.

        Refused before any read when continuing would make it deeper than
        ``max_conversation_depth`` or larger than ``server.max_request_bytes``."""
        self._check_depth(head.depth + 1, head.id)
        self._check_bytes(head.conversation_bytes, head.id)
        parts: list[list[dict[str, Any]]] = []
        minted: Minted = {}
        tool_calls: dict[str, Any] = {}
        chain: list[str] = []
        current: StoredResponse | None = head
        while current is not None:
            chain.append(current.id)
            parts.append(current.items)
            minted.update(current.minted)
            tool_calls.update(current.tool_calls)
            if current.legacy_history is not None:
                parts.append(current.legacy_history)
                break
            if current.previous_id is None:
                break
            if len(chain) >= self.settings.max_conversation_depth:
                self._check_depth(len(chain) + 1, head.id)
            previous_id = current.previous_id
            current = await self.get(previous_id, head.owner)
            if current is None:
                raise NotFoundError(
                    f"Previous response '{head.id}' cannot be continued: the earlier response '{previous_id}' "
                    "of its conversation is no longer stored (deleted, expired, or evicted by the state store's "
                    "size limit). Start a new conversation: send the context you need as input, without "
                    "previous_response_id.",
                    param="previous_response_id",
                    code="previous_response_incomplete",
                )
        items = [item for part in reversed(parts) for item in part]
        return History(items, minted, chain, head.depth, head.conversation_bytes, head.id, tool_calls)

    def _check_depth(self, depth: int, head: str) -> None:
        limit = self.settings.max_conversation_depth
        if depth > limit:
            raise InvalidRequestError(
                f"previous_response_id '{head}': continuing would make the conversation {depth} responses deep; "
                f"ModelMux keeps at most {limit} ([state] max_conversation_depth). Start a new conversation "
                "(send the context you need as input, without previous_response_id), or raise the limit.",
                param="previous_response_id",
                code="conversation_too_deep",
            )

    def _check_bytes(self, size: int, head: str | None) -> None:
        if size > self.max_request_bytes:
            what = f"the conversation of previous_response_id '{head}' with this input" if head else "the input"
            raise InvalidRequestError(
                f"{what} is {size} bytes, over the request size limit of {self.max_request_bytes} bytes "
                "(server.max_request_bytes). Start a new conversation with a shorter input (without "
                "previous_response_id), or raise server.max_request_bytes.",
                param="previous_response_id" if head else "input",
                code="conversation_too_large",
            )

    # -- before the upstream is called -------------------------------------------------------

    async def admit(self, history: History, input_items: list[dict[str, Any]], owner: str | None, store: bool) -> int:
        """Check this turn before any token is spent: the resolved conversation fits the request
        size limit and, when it is to be stored, the input fits a record, the key's quota has room,
        and the store answers (a store that is down is a 503 now, not after the answer).
        Returns the input's size in bytes."""
        input_bytes = len(orjson.dumps(input_items))
        self._check_bytes(history.bytes + input_bytes, history.head)
        if not store:
            return input_bytes
        limit = self.settings.max_record_bytes
        if input_bytes > limit:
            raise PayloadTooLargeError(
                f"input is {input_bytes} bytes; a stored response holds at most {limit} bytes "
                "([state] max_record_bytes). Send store: false, or raise [state] max_record_bytes.",
                param="input",
                code="record_too_large",
            )
        quota = self.settings.max_bytes_per_key
        if not quota:
            await self.store.ping()
            return input_bytes
        now = time.time()
        bucket = int(now // self._bucket_seconds)
        used = await self._used(owner, bucket)
        if used + input_bytes > quota:
            raise RateLimitError(
                f"the stored responses of this API key take {used} bytes ({_mib(used)}) written in the last "
                f"[state] ttl_seconds ({self.ttl} s); the quota is {quota} bytes ({_mib(quota)}, [state] "
                "max_bytes_per_key). Send store: false, delete stored responses you no longer need "
                "(DELETE /v1/responses/{id}), or raise the quota.",
                param="store",
                code="storage_quota_exceeded",
                retry_after=(bucket + 1) * self._bucket_seconds - now,
            )
        return input_bytes

    def _quota_key(self, owner: str | None, bucket: int) -> str:
        return f"{QUOTA_PREFIX}{owner or 'anonymous'}:{bucket}"

    async def _used(self, owner: str | None, bucket: int) -> int:
        ttl = self.ttl + self._bucket_seconds + 1
        counts = await asyncio.gather(
            *(self.store.incr(self._quota_key(owner, b), 0, ttl) for b in range(bucket - BUCKETS, bucket + 1))
        )
        return max(0, sum(counts))

    # -- writing -----------------------------------------------------------------------------

    async def save(
        self,
        response: dict[str, Any],
        history: History,
        input_items: list[dict[str, Any]],
        owner: str | None,
        minted: Minted,
        *,
        output_minted: bool,
        tool_calls: dict[str, Any] | None = None,
    ) -> None:
        """Store ``response`` with its own items, linked to ``history.head``; renew the chain's TTL.

        ``minted`` names the fields ModelMux added to the input items; with ``output_minted``
        the output items' ids are ModelMux's too (a translated answer, or a cache hit).
        ``tool_calls``: the gateway tool items' calls and texts, shown to the model in later turns."""
        output = list(response.get("output") or [])
        own_minted = dict(minted)
        if output_minted:
            for item in output:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    own_minted[item["id"]] = [f for f in ("id", "status") if f in item]
        items_bytes = len(orjson.dumps(input_items)) + len(orjson.dumps(output))
        if tool_calls:  # their texts go upstream again in later turns
            items_bytes += len(orjson.dumps(tool_calls))
        bucket = int(time.time() // self._bucket_seconds)
        record = orjson.dumps(
            {
                "v": RECORD_VERSION,
                "response": response,
                "input": input_items,
                "previous": history.head,
                "owner": owner,
                "depth": history.depth + 1,
                "conversation_bytes": history.bytes + items_bytes,
                "minted": own_minted,
                "bucket": bucket,
                **({"tool_calls": tool_calls} if tool_calls else {}),
            }
        )
        limit = self.settings.max_record_bytes
        if len(record) > limit:
            raise PayloadTooLargeError(
                f"response not stored: its record is {len(record)} bytes, over [state] max_record_bytes ({limit}). "
                "Raise the limit to keep answers this large.",
                code="record_too_large",
            )
        await self.store.set(KEY_PREFIX + str(response["id"]), record, ttl=self.ttl)
        for start in range(0, len(history.chain), _TOUCH_BATCH):
            batch = history.chain[start : start + _TOUCH_BATCH]
            await asyncio.gather(*(self.store.touch(KEY_PREFIX + rid, self.ttl) for rid in batch))
        if self.settings.max_bytes_per_key:
            ttl = self.ttl + self._bucket_seconds + 1
            await self.store.incr(self._quota_key(owner, bucket), len(record), ttl)

    async def delete(self, response_id: str, owner: str | None) -> bool:
        stored = await self.get(response_id, owner)
        if stored is None:
            return False
        deleted = await self.store.delete(KEY_PREFIX + response_id)
        current = int(time.time() // self._bucket_seconds)
        if deleted and stored.bucket is not None and stored.bucket >= current - BUCKETS:
            if self.settings.max_bytes_per_key:
                ttl = self.ttl + self._bucket_seconds + 1
                await self.store.incr(self._quota_key(owner, stored.bucket), -stored.size, ttl)
        return deleted
