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

import operator
import types
import typing
from collections.abc import Callable
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


def _test(op: Callable[[Any, Any], bool], bound: Any, of_len: bool = False) -> Callable[[Any], bool]:
    if of_len:
        return lambda v: op(len(v), bound)
    return lambda v: op(v, bound)


def _bounds(metadata: list[Any]) -> tuple[list[Callable[[Any], bool]], bool]:
    """Tests for the annotated-types constraints; False when one is not understood."""
    tests: list[Callable[[Any], bool]] = []
    for m in metadata:
        if isinstance(m, at.Ge):
            tests.append(_test(operator.ge, m.ge))
        elif isinstance(m, at.Gt):
            tests.append(_test(operator.gt, m.gt))
        elif isinstance(m, at.Le):
            tests.append(_test(operator.le, m.le))
        elif isinstance(m, at.Lt):
            tests.append(_test(operator.lt, m.lt))
        elif isinstance(m, at.MinLen):
            tests.append(_test(operator.ge, m.min_length, of_len=True))
        elif isinstance(m, at.MaxLen):
            tests.append(_test(operator.le, m.max_length, of_len=True))
        else:
            return [], False
    return tests, True


def _scalar(kinds: tuple[type, ...], tests: list[Callable[[Any], bool]]) -> Check:
    if not tests:
        return lambda v: type(v) in kinds
    return lambda v: type(v) in kinds and all(t(v) for t in tests)


def _of(annotation: Any, metadata: list[Any], seen: dict[type, Check]) -> Check:
    """The fast check of one annotation (with its field's constraints)."""
    tests, understood = _bounds(metadata)
    if not understood:
        return _never
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return _always
    if annotation is None or annotation is type(None):
        return lambda v: v is None
    if origin in (Union, types.UnionType):
        # Constraints on an optional field apply to its value, not to None.
        options = [_of(a, metadata if a is not type(None) else [], seen) for a in typing.get_args(annotation)]
        return lambda v: any(o(v) for o in options)
    if annotation is bool:
        return lambda v: type(v) is bool
    if annotation is str:
        return _scalar((str,), tests)
    if annotation is int:
        return _scalar((int,), tests)
    if annotation is float:
        return _scalar((float, int), tests)  # JSON's 1 is a valid float; bool is neither
    if origin is Literal:
        values = typing.get_args(annotation)
        if not all(type(x) is str for x in values):
            return _never
        allowed = frozenset(values)
        return lambda v: type(v) is str and v in allowed
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        each = _of(item, [], seen)
        if each is _always:
            return _scalar((list,), tests)
        return lambda v: type(v) is list and all(t(v) for t in tests) and all(each(i) for i in v)
    if origin is dict:
        key, value = typing.get_args(annotation) or (str, Any)
        each = _of(value, [], seen)
        if key is not str:
            return _never
        if each is _always:
            return _scalar((dict,), tests)
        return lambda v: type(v) is dict and all(t(v) for t in tests) and all(each(i) for i in v.values())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and not tests:
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
    fields: list[tuple[str, bool, Check]] = []
    for name, info in model.model_fields.items():
        fields.append((info.alias or name, info.is_required(), _of(info.annotation, list(info.metadata), seen)))
    known = frozenset(key for key, _, _ in fields)

    def check(value: Any) -> bool:
        if type(value) is not dict:
            return False
        for key, required, test in fields:
            item = value.get(key, _MISSING)
            if item is _MISSING:
                if required:
                    return False
            elif not test(item):
                return False
        return not forbid or known.issuperset(value)

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
