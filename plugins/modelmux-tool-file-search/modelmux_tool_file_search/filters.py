"""Attribute filters of OpenAI's file search (``ComparisonFilter`` / ``CompoundFilter``), checked
against a file's ``attributes``, and their validation (a 400 naming the bad part)."""

from __future__ import annotations

from typing import Any

from modelmux.plugin import InvalidRequestError

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_DEPTH = 8


def check_filters(node: Any, param: str, depth: int = 0) -> None:
    if not isinstance(node, dict):
        raise InvalidRequestError(f"Invalid '{param}': expected an object.", param=param, code="invalid_type")
    kind = node.get("type")
    if kind in COMPOUNDS:
        if set(node) - {"type", "filters"}:
            extra = sorted(set(node) - {"type", "filters"})[0]
            raise InvalidRequestError(f"Unknown parameter: '{param}.{extra}'.", param=f"{param}.{extra}")
        children = node.get("filters")
        if not isinstance(children, list) or depth >= MAX_DEPTH:
            raise InvalidRequestError(
                f"Invalid '{param}.filters': expected a list of filters (nested at most {MAX_DEPTH} deep).",
                param=f"{param}.filters",
            )
        for i, child in enumerate(children):
            check_filters(child, f"{param}.filters[{i}]", depth + 1)
        return
    if kind not in COMPARISONS:
        raise InvalidRequestError(
            f"Invalid '{param}.type': {kind!r}. Expected one of: {', '.join(COMPARISONS + COMPOUNDS)}.",
            param=f"{param}.type",
            code="invalid_value",
        )
    if set(node) != {"type", "key", "value"}:
        missing = sorted({"type", "key", "value"} - set(node)) or sorted(set(node) - {"type", "key", "value"})
        raise InvalidRequestError(
            f"Invalid '{param}': a comparison has exactly 'type', 'key' and 'value' (check '{missing[0]}').",
            param=param,
        )
    if not isinstance(node["key"], str):
        raise InvalidRequestError(f"Invalid '{param}.key': expected a string.", param=f"{param}.key")
    value = node["value"]
    scalar = (str, int, float, bool)
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
            raise InvalidRequestError(
                f"Invalid '{param}.value': '{kind}' takes a list of strings or numbers.", param=f"{param}.value"
            )
    elif not isinstance(value, scalar):
        raise InvalidRequestError(
            f"Invalid '{param}.value': expected a string, number or boolean.", param=f"{param}.value"
        )


def _compare(kind: str, have: Any, want: Any) -> bool:
    if kind == "eq":
        return bool((have == want and type(have) is type(want)) or (_both_numbers(have, want) and have == want))
    if kind == "ne":
        return not _compare("eq", have, want)
    if kind == "in":
        return any(_compare("eq", have, w) for w in want)
    if kind == "nin":
        return not any(_compare("eq", have, w) for w in want)
    # Ordering compares numbers with numbers and strings with strings; anything else does not match.
    if not (_both_numbers(have, want) or (isinstance(have, str) and isinstance(want, str))):
        return False
    if kind == "gt":
        return bool(have > want)
    if kind == "gte":
        return bool(have >= want)
    if kind == "lt":
        return bool(have < want)
    return bool(have <= want)


def _both_numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))


def matches(node: dict[str, Any], attributes: dict[str, Any] | None) -> bool:
    """Does a file with these attributes pass the (already checked) filter? A missing key never
    matches a comparison, except ``ne`` and ``nin``."""
    kind = node["type"]
    if kind == "and":
        return all(matches(child, attributes) for child in node["filters"])
    if kind == "or":
        return any(matches(child, attributes) for child in node["filters"])
    attrs = attributes or {}
    if node["key"] not in attrs:
        return kind in ("ne", "nin")
    return _compare(kind, attrs[node["key"]], node["value"])
