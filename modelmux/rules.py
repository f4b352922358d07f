"""Request rules declared once, as pydantic models, and checked two ways.

Building pydantic models for every request costs more than parsing its JSON for a long
conversation (docs/performance.md, "Profile": request validation). So ``Rules`` compiles, from the same
model, a plain-Python check that only answers "valid or not" on the JSON the client sent; the
model itself runs only when that check says no, to name the problem in the 400 (or to accept
what the fast check could not judge). The fast check may be stricter than the model, never
looser: what it does not understand (a custom validator, a discriminated union, a pattern)
it refuses, and the model decides. ``tests/unit/test_rules.py`` holds the two against each other.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import annotated_types as at
import orjson
from pydantic import BaseModel, ValidationError

from modelmux.errors import InvalidRequestError

Check = Callable[[Any], bool]
_MISSING = object()


def _never(value: Any) -> bool:
    return False


def _always(value: Any) -> bool:
    return True


# The checks below run on every request, so each is built to cost few Python calls: a field's
# type and constraints are one compiled expression (``type(v) is int and v >= b0``), the plain
# types of a union one set lookup, loops instead of generator expressions (a generator per call
# costs more than the checks). The benchmark's 2-message chat request: 67,000 instructions with
# closures calling closures through ``all()``/``any()``, 23,000 like this (docs/performance.md).

#: The annotated-types constraints the fast check understands: (attribute, comparison).
_LIMITS: dict[type, tuple[str, str]] = {
    at.Ge: ("ge", ">="),
    at.Gt: ("gt", ">"),
    at.Le: ("le", "<="),
    at.Lt: ("lt", "<"),
    at.MinLen: ("min_length", ">="),
    at.MaxLen: ("max_length", "<="),
}


@dataclass(frozen=True)
class _Limits:
    """A field's constraints as one expression on ``v`` (``""``: none) and the bounds it names."""

    source: str = ""
    bounds: dict[str, Any] = field(default_factory=dict)


def _limits(metadata: list[Any]) -> _Limits | None:
    """The constraints of a field; None when one is not understood."""
    parts: list[str] = []
    bounds: dict[str, Any] = {}
    for i, m in enumerate(metadata):
        known = _LIMITS.get(type(m))
        if known is None:
            return None
        attr, comparison = known
        bounds[f"b{i}"] = getattr(m, attr)
        parts.append(f"{'len(v)' if attr.endswith('_length') else 'v'} {comparison} b{i}")
    return _Limits(" and ".join(parts), bounds)


def _compiled(source: str, names: dict[str, Any]) -> Check:
    """``lambda v: SOURCE`` with ``names``, made once at start-up. The source is ours: the bounds
    and helpers are passed as names, never formatted into it."""
    check: Check = eval(f"lambda v: {source}", {"__builtins__": {"len": len, "type": type}, **names})
    return check


def _typed(kinds: tuple[type, ...], limits: _Limits) -> Check:
    """``v``'s type is one of ``kinds`` (exactly: JSON makes no subclasses) and it is within ``limits``."""
    source = "type(v) is k0" if len(kinds) == 1 else "type(v) in kinds"
    if limits.source:
        source += f" and {limits.source}"
    return _compiled(source, {"k0": kinds[0], "kinds": frozenset(kinds), **limits.bounds})


def _plain(annotation: Any, limits: _Limits, seen: dict[type, Check]) -> tuple[type, ...] | None:
    """The types ``annotation`` allows when its check is only a type check (None: it is more)."""
    if limits.source:
        return None
    if annotation is None or annotation is type(None):
        return (type(None),)
    if annotation in (bool, str, int):
        return (annotation,)
    if annotation is float:
        return (float, int)  # JSON's 1 is a valid float; bool is neither
    origin = typing.get_origin(annotation)
    if annotation in (list, dict) or origin in (list, dict):
        args = typing.get_args(annotation)
        if origin is dict and args and args[0] is not str:
            return None
        if not args or _of(args[-1], [], seen) is _always:
            return (origin or annotation,)
    return None


def _any_of(kinds: set[type], checks: list[Check]) -> Check:
    """The check of a union: its plain types in one lookup, then the other options in order."""
    if not checks:
        return _typed(tuple(kinds), _Limits())
    if len(checks) == 1 and kinds:
        return _compiled("type(v) in kinds or c0(v)", {"kinds": frozenset(kinds), "c0": checks[0]})
    options = [_typed(tuple(kinds), _Limits()), *checks] if kinds else checks

    def one_passes(v: Any) -> bool:
        for o in options:
            if o(v):
                return True
        return False

    return one_passes


def _of(annotation: Any, metadata: list[Any], seen: dict[type, Check]) -> Check:
    """The fast check of one annotation (with its field's constraints)."""
    limits = _limits(metadata)
    if limits is None:
        return _never
    if annotation is Any:
        return _always
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        # Constraints on an optional field apply to its value, not to None.
        kinds: set[type] = set()
        checks: list[Check] = []
        for option in typing.get_args(annotation):
            if option is Any:
                return _always
            own = limits if option is not type(None) else _Limits()
            plain = _plain(option, own, seen)
            if plain is not None:
                kinds.update(plain)
            else:
                checks.append(_of(option, metadata if option is not type(None) else [], seen))
        return _any_of(kinds, checks)
    if origin is Literal:
        values = typing.get_args(annotation)
        if not all(type(x) is str for x in values):
            return _never
        return _compiled("type(v) is k0 and v in allowed", {"k0": str, "allowed": frozenset(values)})
    if origin in (list, dict) or annotation in (list, dict):
        container = origin or annotation
        args = typing.get_args(annotation)
        if container is dict and args and args[0] is not str:
            return _never
        head = _typed((container,), limits)
        each = _of(args[-1], [], seen) if args else _always
        if each is _always:
            return head
        if container is dict:

            def dict_check(v: Any) -> bool:
                if not head(v):
                    return False
                for i in v.values():
                    if not each(i):
                        return False
                return True

            return dict_check

        def list_check(v: Any) -> bool:
            if not head(v):
                return False
            for i in v:
                if not each(i):
                    return False
            return True

        return list_check
    plain = _plain(annotation, _Limits(), seen)
    if plain is not None:
        return _typed(plain, limits)  # a scalar and its bounds
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and not limits.source:
        return _model(annotation, seen)
    return _never


def _model(model: type[BaseModel], seen: dict[type, Check]) -> Check:
    if model in seen:
        return lambda v: seen[model](v)  # a recursive model: looked up once it is built
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or decorators.model_validators or decorators.validators:
        seen[model] = _never
        return _never
    seen[model] = _never  # placeholder while the fields are compiled
    forbid = model.model_config.get("extra") == "forbid"
    fields: dict[str, Check] = {}
    required: set[str] = set()
    for name, info in model.model_fields.items():
        key = info.alias or name
        fields[key] = _of(info.annotation, list(info.metadata), seen)
        if info.is_required():
            required.add(key)
    needed = frozenset(required)

    def check(value: Any) -> bool:
        if type(value) is not dict:
            return False
        # The client's keys, not the model's fields: a request sets a few of many optional fields.
        for key, item in value.items():
            test = fields.get(key)
            if test is None:
                if forbid:
                    return False
            elif not test(item):
                return False
        return not needed or value.keys() >= needed

    seen[model] = check
    return check


def compile_check(model: type[BaseModel]) -> Check:
    """A plain-Python check that accepts only what ``model`` accepts."""
    return _model(model, {})


class Rules:
    """One endpoint's request rules: ``validate(body)`` passes or raises the 400 naming the field."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.fast = compile_check(model)

    def validate(self, body: dict[str, Any]) -> None:
        if self.fast(body):
            return
        try:
            self.model.model_validate(body)
        except ValidationError as exc:
            raise validation_error(exc) from None


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[ContentPart]", "function-after", "literal"):
            continue  # union branch names pydantic adds to locations
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_error(exc: ValidationError) -> InvalidRequestError:
    err = exc.errors()[0]
    param = _param(err["loc"])
    if err["type"] == "missing":
        message = f"Missing required parameter: '{param}'."
    else:
        shown = orjson.dumps(err.get("input"), default=str).decode()[:200]
        message = f"Invalid value for '{param}': {err['msg']} (got {shown})."
    more = len(exc.errors()) - 1
    if more > 0:
        message += f" ({more} more problem{'s' if more > 1 else ''} in the request)"
    return InvalidRequestError(
        message,
        param=param,
        code="invalid_value" if err["type"] != "missing" else "missing_required_parameter",
    )
