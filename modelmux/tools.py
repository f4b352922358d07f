"""Built-in tools the gateway runs itself (``web_search``, ``file_search``, ...): the tool contract.

A tool plugin registers a ``Tool`` subclass and its settings model (``register_tools``); a
``[tools.TYPE]`` table turns it on. When a Responses request names the tool in ``tools``, the
host offers it to the model as a function (``Tool.function``), runs ``Tool.run`` when the model
calls it, gives the model the tool's text and asks again, up to ``[tools] max_rounds``
(``modelmux/tool_loop.py``). The Response then carries one output item per call
(``{type: item_type, id, status, **ToolOutput.item}``). A tool may also serve HTTP endpoints
(``routes()``: the Files and Vector stores APIs of file search), behind the gateway's auth.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from modelmux.errors import UpstreamError

if TYPE_CHECKING:
    import aiohttp

    from modelmux.provider import Check, Host

#: Inputs per embeddings call ``ToolContext.embed`` makes (OpenAI's own limit per request).
EMBED_BATCH = 2048


class ToolSettings(BaseModel):
    """The base of every tool plugin's settings model: validates its ``[tools.TYPE]`` table."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call of a tool by the model."""

    #: The model's call id.
    call_id: str
    #: The model's arguments, a parsed JSON object.
    arguments: dict[str, Any]
    #: The client's entry in ``tools`` (``{"type": "file_search", "vector_store_ids": [...], ...}``).
    tool: Mapping[str, Any]
    #: The request's ``include`` (``"file_search_call.results"``, ``"web_search_call.action.sources"``).
    include: frozenset[str] = frozenset()


@dataclass(slots=True)
class ToolOutput:
    """What one call produced."""

    #: The Response output item without ``id``, ``type`` and ``status`` (the host adds them).
    item: dict[str, Any]
    #: What the model reads as the tool's answer.
    text: str
    #: Citable sources, for ``Tool.annotate``.
    sources: list[dict[str, Any]] = field(default_factory=list)
    #: True: the item's status is ``failed`` (``text`` tells the model why).
    failed: bool = False


Embedder = Callable[[str, Sequence[str]], Awaitable[list[list[float]]]]


class ToolContext:
    """What the host gives a tool for one request (a ``run`` or an endpoint of ``routes()``)."""

    __slots__ = ("_embed", "http", "key_id", "request_id")

    def __init__(
        self,
        key_id: str | None,
        request_id: str,
        http: aiohttp.ClientSession,
        embed: Embedder | None = None,
    ) -> None:
        #: The client key's stable, non-secret id (the owner, for per-key isolation); None: no keys configured.
        self.key_id = key_id
        self.request_id = request_id
        #: The gateway's pooled HTTP client.
        self.http = http
        self._embed = embed

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings of ``texts`` (in order) through the gateway's router, for a configured model name
        or ``PROVIDER/MODEL``: its providers, retries, fallbacks and breakers. Raises the
        ``ModelMuxError`` of a failure (``NotFoundError`` for an unknown model)."""
        if self._embed is None:
            raise UpstreamError("this ToolContext has no embeddings (made without a gateway)")
        if not texts:
            return []
        return await self._embed(model, texts)


ToolEndpoint = Callable[[Request, ToolContext], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class ToolRoute:
    """An HTTP endpoint a tool serves: ``path`` (``{name}`` one segment, in ``request.path_params``)
    and a handler per method."""

    path: str
    endpoints: Mapping[str, ToolEndpoint]


#: The function parameters a tool offers when it does not say: one search query.
QUERY_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What to search for."}},
    "required": ["query"],
    "additionalProperties": False,
}


class Tool(ABC):
    """The base class of a tool plugin's tool: one instance per configured ``[tools.TYPE]`` table."""

    #: The OpenAI tool type it implements, as clients write it in ``tools``.
    type: ClassVar[str]
    #: Other tool types it answers to (e.g. ``("web_search_preview",)``).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The output item's type; default ``TYPE_call``.
    item_type: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("item_type") and isinstance(getattr(cls, "type", None), str):
            cls.item_type = f"{cls.type}_call"

    def __init__(self, settings: ToolSettings, host: Host) -> None:
        self.settings = settings
        self.host = host

    def check(self, tool: Mapping[str, Any]) -> None:
        """Validate the client's entry in ``tools``; raise ``InvalidRequestError(param="tools")``. Default: accept."""

    async def prepare(self, tool: Mapping[str, Any], ctx: ToolContext) -> None:
        """Called once per request naming the tool, after ``check`` and before the first model call,
        with the request's context: refuse what needs a look-up (a vector store this client key does
        not have) with ``InvalidRequestError(param="tools")``. Default: nothing."""

    def function(self, tool: Mapping[str, Any]) -> dict[str, Any]:
        """The function offered to the model: ``{"name", "description", "parameters"}``."""
        doc = (type(self).__doc__ or "").strip().split("\n\n")[0]
        return {
            "name": self.type,
            "description": " ".join(doc.split()) or f"The {self.type} tool.",
            "parameters": QUERY_PARAMETERS,
        }

    @abstractmethod
    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        """Run one call. Raise nothing for a failure the model should hear of: return
        ``ToolOutput(failed=True, text=why)``; an exception is also caught (logged, the model told)."""

    def annotate(self, text: str, outputs: Sequence[ToolOutput]) -> list[dict[str, Any]]:
        """Annotations of the final answer ``text`` (``url_citation``, ``file_citation``); default none."""
        return []

    def routes(self) -> Sequence[ToolRoute]:
        """Extra HTTP endpoints the gateway serves for this tool; default none."""
        return ()

    async def start(self) -> None:
        """Called once when the gateway starts, before any request."""

    async def aclose(self) -> None:
        """Called once at shutdown."""

    async def doctor(self) -> list[Check]:
        """Checks for ``modelmux doctor``."""
        return []


def embeddings_of(data: Any, count: int) -> list[list[float]]:
    """The vectors of a ``CreateEmbeddingResponse`` in input order (a 502 if it is not one)."""
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list) or len(rows) != count:
        raise UpstreamError(
            f"the embeddings answer has {len(rows) if isinstance(rows, list) else 'no'} vectors; {count} were asked"
        )
    out: list[list[float]] = [[] for _ in range(count)]
    for position, row in enumerate(rows):
        index = row.get("index", position) if isinstance(row, dict) else None
        vector = row.get("embedding") if isinstance(row, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or not isinstance(vector, list):
            raise UpstreamError("the embeddings answer is not a list of float vectors")
        out[index] = [float(v) for v in vector]
    if any(not v or not all(math.isfinite(x) for x in v) for v in out):
        raise UpstreamError("the embeddings answer has an empty or non-finite vector")
    return out


__all__ = [
    "EMBED_BATCH",
    "QUERY_PARAMETERS",
    "Embedder",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolEndpoint",
    "ToolOutput",
    "ToolRoute",
    "ToolSettings",
    "embeddings_of",
]
