"""Responses request -> Chat Completions body.

``normalize_input`` turns the client's ``input`` into stored items (ids, resolved
``item_reference``s); ``chat_request`` turns the whole conversation (stored history +
this input) plus the request's parameters into a chat body for ``router.call("chat")``.
``instructions`` become a leading system message for this response only: they are
never part of the stored history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelmux.errors import InvalidRequestError
from modelmux.translate.responses import NS_SEP, ToolNames, ToolOrigin, flat_name, new_id

#: Empty parameters a chat function needs when a Responses function tool gives none.
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
}


# -- input items --------------------------------------------------------------------------------


def _text_parts(content: str | list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        content = [{"type": kind, "text": content}]
    out = []
    for part in content:
        part = dict(part)
        if kind == "output_text" and part.get("type") in ("input_text", "output_text"):
            part["type"] = "output_text"
            part.setdefault("annotations", [])
            part.setdefault("logprobs", [])
        out.append(part)
    return out


def normalize_input(
    raw: Any, history: list[dict[str, Any]], minted: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """The client's ``input`` as stored items: every item gets an id and a status.

    ``minted`` (when given) is filled with the fields added to each item, by item id: they
    are left out when the items are replayed to a native Responses upstream."""
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    known = {item.get("id"): item for item in history if item.get("id")}
    items: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        kind = item.get("type")
        if kind == "item_reference" or (kind is None and "role" not in item and "id" in item):
            found = known.get(item["id"])
            if found is None:
                raise InvalidRequestError(
                    f"item_reference '{item['id']}' is not an item of this conversation: ModelMux resolves "
                    "references among the items of previous_response_id and its predecessors.",
                    param=f"input[{index}].id",
                )
            items.append(found)
            continue
        item = dict(item)
        if kind is None:
            item["type"] = kind = "message"
        if kind == "message":
            role = item["role"]
            item["content"] = _text_parts(item["content"], "output_text" if role == "assistant" else "input_text")
        # every stored item has an id (input_items pagination needs one)
        added = [f for f in ("id", "status") if f not in item]
        item.setdefault("id", new_id(_ID_PREFIX.get(kind, "item")))
        if kind in _ID_PREFIX:
            item.setdefault("status", "completed")
        elif "status" in added:
            added.remove("status")
        if minted is not None and added:
            minted[item["id"]] = added
        items.append(item)
    return items


# -- content -----------------------------------------------------------------------------------------


def _chat_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal", "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not url:
            raise InvalidRequestError(
                f"{where}: input_image needs an image_url (https or data URL); file_id is not served by ModelMux.",
                param=where,
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if not part.get("file_data"):
            raise InvalidRequestError(
                f"{where}: input_file needs file_data (base64); file_id and file_url are not served by ModelMux.",
                param=where,
            )
        file: dict[str, Any] = {"file_data": part["file_data"]}
        if part.get("filename"):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise InvalidRequestError(f"{where}: unsupported content part type {kind!r}.", param=where)


def _chat_content(content: list[dict[str, Any]], where: str, *, text_only: bool) -> str | list[dict[str, Any]]:
    parts = [_chat_part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    if text_only or all(p["type"] == "text" for p in parts):
        # plain strings suit every upstream (chat templates, system prompts)
        return "\n".join(p["text"] for p in parts if p["type"] == "text")
    return parts


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(str(p.get("text", "")) for p in output if isinstance(p, dict) and "text" in p)
    return orjson.dumps(output).decode()


#: A gateway tool call of an earlier response, as the model saw it: item id -> ``{"call_id", "name",
#: "arguments", "output"}`` (stored with the response, ``Conversations.save(tool_calls=...)``).
Replay = Mapping[str, Mapping[str, Any]]


def _tool_call_replay(item: dict[str, Any], replay: Replay | None) -> Mapping[str, Any] | None:
    """The call and answer to show the model for a gateway tool's item: as stored, or (an item the
    client sent itself, or a response stored without it) a summary of the item."""
    found = replay.get(str(item.get("id"))) if replay else None
    if found is not None:
        return found
    kind = str(item.get("type"))
    if kind == "web_search_call":
        raw = item.get("action")
        action: dict[str, Any] = raw if isinstance(raw, dict) else {}
        query = action.get("query") or "; ".join(map(str, action.get("queries") or []))
        sources = [str(s.get("url")) for s in action.get("sources") or [] if isinstance(s, dict)]
        text = f"Searched the web for {query!r}." + (f" Sources: {', '.join(sources)}" if sources else "")
        args = {"query": query}
    elif kind == "file_search_call":
        queries = [str(q) for q in item.get("queries") or []]
        results = [r for r in item.get("results") or [] if isinstance(r, dict)]
        found_text = "\n\n".join(f"[{r.get('filename') or r.get('file_id')}] {r.get('text', '')}" for r in results)
        text = f"Searched the files for {'; '.join(queries)!r}." + (f" Results:\n{found_text}" if found_text else "")
        args = {"query": queries[0] if queries else ""}
    else:
        return None
    return {
        "call_id": str(item.get("id")),
        "name": kind.removesuffix("_call"),
        "arguments": orjson.dumps(args).decode(),
        "output": text,
    }


def items_to_messages(items: list[dict[str, Any]], replay: Replay | None = None) -> list[dict[str, Any]]:
    """Conversation items -> chat messages. Reasoning and other built-in tool items are not sent;
    a gateway tool's item (``web_search_call``, ...) is its call and answer again (``replay``)."""
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        kind = item.get("type", "message")
        where = f"input[{index}].content"
        if kind == "message":
            role = item["role"]
            if role == "assistant":
                messages.append({"role": "assistant", "content": _chat_content(item["content"], where, text_only=True)})
            else:
                chat_role = "user" if role == "user" else "system"  # developer -> system suits every upstream
                content = _chat_content(item["content"], where, text_only=chat_role == "system")
                messages.append({"role": chat_role, "content": content})
        elif kind in ("function_call", "custom_tool_call"):
            if kind == "function_call":
                arguments = item.get("arguments") or "{}"
            else:
                arguments = orjson.dumps({"input": item.get("input", "")}).decode()
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": flat_name(item.get("namespace"), item["name"]), "arguments": arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _output_text(item["output"])})
        elif (shown := _tool_call_replay(item, replay)) is not None:
            call = {
                "id": shown["call_id"],
                "type": "function",
                "function": {"name": shown["name"], "arguments": shown["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                # one answer of the model: its text and its calls (a client call's output may come later)
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append({"role": "tool", "tool_call_id": shown["call_id"], "content": str(shown["output"])})
        # reasoning, web_search_call, mcp_*, ...: nothing a chat upstream can take
    return messages


# -- tools -------------------------------------------------------------------------------------------


@dataclass
class ChatTools:
    tools: list[dict[str, Any]] = field(default_factory=list)
    names: ToolNames = field(default_factory=ToolNames)
    #: Built-in tool types the upstream cannot run (for the log and x-modelmux-dropped-tools).
    dropped: list[str] = field(default_factory=list)


def _function(name: str, description: str | None, parameters: Any, strict: bool | None) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name, "parameters": parameters or _NO_PARAMETERS}
    if description:
        fn["description"] = description
    if strict is not None:
        fn["strict"] = strict
    return {"type": "function", "function": fn}


def _custom_as_function(name: str, tool: dict[str, Any], description: str | None) -> dict[str, Any]:
    fmt = tool.get("format") or {}
    hint = "Free-form text input."
    if fmt.get("type") == "grammar":
        hint = f"Input in this {fmt.get('syntax', 'grammar')} grammar:\n{fmt.get('definition', '')}"
    params = {
        "type": "object",
        "properties": {"input": {"type": "string", "description": hint}},
        "required": ["input"],
    }
    return _function(name, tool.get("description") or description, params, None)


def chat_tools(
    tools: list[dict[str, Any]] | None,
    *,
    strict_tools: bool,
    model: str,
    gateway: Mapping[int, dict[str, Any]] | None = None,
) -> ChatTools:
    """``gateway``: index in ``tools`` -> the function the gateway offers for that built-in tool."""
    out = ChatTools()

    def add(flat: str, origin: ToolOrigin, spec: dict[str, Any], where: str) -> None:
        if flat in out.names.by_flat:
            raise InvalidRequestError(f"{where}: two tools are named {flat!r} for the model.", param=where)
        out.names.by_flat[flat] = origin
        out.tools.append(spec)

    for index, tool in enumerate(tools or []):
        kind = tool["type"]
        where = f"tools[{index}]"
        if gateway and index in gateway:
            fn = gateway[index]
            add(fn["name"], ToolOrigin(fn["name"], kind="gateway"), {"type": "function", "function": fn}, where)
        elif kind == "function":
            spec = _function(tool["name"], tool.get("description"), tool.get("parameters"), tool.get("strict"))
            add(tool["name"], ToolOrigin(tool["name"]), spec, where)
        elif kind == "custom":
            add(
                tool["name"],
                ToolOrigin(tool["name"], kind="custom"),
                _custom_as_function(tool["name"], tool, None),
                where,
            )
        elif kind == "namespace":
            ns = tool["name"]
            for j, member in enumerate(tool["tools"]):
                flat = f"{ns}{NS_SEP}{member['name']}"
                desc = member.get("description") or tool.get("description")
                if member["type"] == "custom":
                    add(flat, ToolOrigin(member["name"], ns, "custom"), _custom_as_function(flat, member, desc), where)
                else:
                    spec = _function(flat, desc, member.get("parameters"), member.get("strict"))
                    add(flat, ToolOrigin(member["name"], ns), spec, f"{where}.tools[{j}]")
        elif strict_tools:
            raise InvalidRequestError(
                f"{where}: the built-in tool '{kind}' cannot run on model '{model}': its provider has no "
                "Responses API. Remove the tool, or set strict_tools = false on the model to drop it instead.",
                param=where,
                code="unsupported_tool",
            )
        else:
            out.dropped.append(kind)
    return out


def chat_tool_choice(choice: Any, tools: ChatTools) -> tuple[Any, list[dict[str, Any]]]:
    """The chat ``tool_choice`` and the tools to send (``allowed_tools`` narrows them)."""
    if choice is None or isinstance(choice, str):
        return choice, tools.tools
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = choice["name"]
        if name not in tools.names.by_flat:
            # a namespace member may be named without its namespace
            matches = [flat for flat, o in tools.names.by_flat.items() if o.name == name]
            name = matches[0] if len(matches) == 1 else name
        return {"type": "function", "function": {"name": name}}, tools.tools
    gateway = {o.name: flat for flat, o in tools.names.by_flat.items() if o.kind == "gateway"}
    if kind == "allowed_tools":
        allowed = {flat_name(t.get("namespace"), t["name"]) for t in choice["tools"] if t.get("name")}
        allowed |= {gateway[t["type"]] for t in choice["tools"] if t.get("type") in gateway}
        kept = [t for t in tools.tools if t["function"]["name"] in allowed]
        return choice["mode"], kept
    if kind in gateway:  # {"type": "web_search"}: the gateway runs it, so the model must call its function
        return {"type": "function", "function": {"name": gateway[kind]}}, tools.tools
    return "auto", tools.tools  # a built-in tool (or MCP server) we could not send


# -- the body ------------------------------------------------------------------------------------


@dataclass
class ChatPlan:
    body: dict[str, Any]
    names: ToolNames
    dropped: list[str]


def chat_request(
    body: dict[str, Any],
    conversation: list[dict[str, Any]],
    *,
    stream: bool,
    strict_tools: bool = False,
    gateway: Mapping[int, dict[str, Any]] | None = None,
    replay: Replay | None = None,
) -> ChatPlan:
    """The chat body for ``body`` over ``conversation`` (stored history + this turn's input items).

    ``gateway``: the functions of the built-in tools the gateway runs (by index in ``tools``);
    ``replay``: the stored calls of earlier gateway tool items (``items_to_messages``)."""
    messages = items_to_messages(conversation, replay)
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    if not messages:
        raise InvalidRequestError(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    model = str(body["model"])
    chat: dict[str, Any] = {"model": model, "messages": messages}
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    tools = chat_tools(body.get("tools"), strict_tools=strict_tools, model=model, gateway=gateway)
    choice, sent = chat_tool_choice(body.get("tool_choice"), tools)
    if sent:
        chat["tools"] = sent
        if choice is not None:
            chat["tool_choice"] = choice
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    for src, dst in (
        ("max_output_tokens", "max_completion_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("user", "user"),
    ):
        if body.get(src) is not None:
            chat[dst] = body[src]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        schema.setdefault("name", "response")
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    return ChatPlan(chat, tools.names, tools.dropped)


def native_request(
    body: dict[str, Any],
    history: list[dict[str, Any]],
    input_items: list[dict[str, Any]],
    minted: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The body for an upstream with its own Responses API: ModelMux keeps the conversation, so
    ``previous_response_id`` becomes the stored items, sent in full, without the ids and
    statuses ModelMux minted (``minted``): the upstream never saw those ids, and one that looks
    items up by id (OpenAI: "Item with id ... not found") or checks them strictly refuses them."""
    out = {k: v for k, v in body.items() if k != "previous_response_id"}
    if history:
        keep = [i for i in history if i.get("type") != "reasoning" or i.get("encrypted_content")]
        items = keep + input_items
        if minted:
            items = [_without(item, minted.get(str(item.get("id")))) for item in items]
        out["input"] = items
    return out


def _without(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in fields} if fields else item
