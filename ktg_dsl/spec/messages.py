"""pydantic's validation errors, rewritten as :class:`SpecIssue` in the user's words."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import Path, SpecIssue, choices_hint, did_you_mean

_SCALARS = (str, int, float, bool, type(None))


def _fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _unwrap(annotation: Any) -> list[Any]:
    """Annotated/Optional/Union -> the concrete alternatives."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def model_at(root: type[BaseModel], loc: Path) -> type[BaseModel] | None:
    """The pydantic model that validates the value at ``loc`` (None when not a model)."""
    current: list[Any] = [root]
    for part in loc:
        nxt: list[Any] = []
        for ann in current:
            for alt in _unwrap(ann):
                origin = typing.get_origin(alt)
                if isinstance(alt, type) and issubclass(alt, BaseModel) and isinstance(part, str):
                    for name, field in alt.model_fields.items():
                        if part in (name, field.alias):
                            nxt.append(field.annotation)
                elif origin in (list, tuple) and isinstance(part, int):
                    nxt.append(typing.get_args(alt)[0])
                elif origin is dict:
                    nxt.append(typing.get_args(alt)[1])
        current = nxt
    for ann in current:
        for alt in _unwrap(ann):
            if isinstance(alt, type) and issubclass(alt, BaseModel):
                return alt
    return None


MISSING = object()


def schema_default(root: type[BaseModel], path: Path) -> Any:
    """The plain-data default of the key at ``path`` (MISSING when it has none)."""
    if not path or not isinstance(path[-1], str):
        return MISSING
    parent = model_at(root, path[:-1])
    if parent is None:
        return MISSING
    for name, field in parent.model_fields.items():
        if path[-1] in (name, field.alias) and not field.is_required():
            value = field.get_default(call_default_factory=True)
            if isinstance(value, BaseModel):
                return value.model_dump(by_alias=True, exclude_none=True)
            return value
    return MISSING


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) < 60 else repr(value[:57] + "...")
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}
_TYPES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "tuple_type": "a list",
}


def issue_from_error(err: Any, root: type[BaseModel], prefix: Path = ()) -> SpecIssue:
    loc: Path = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    path = (*prefix, *loc)
    hint = None
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        parent = model_at(root, loc[:-1])
        allowed = _fields(parent) if parent else []
        message = f"unknown key '{key}'"
        hint = did_you_mean(str(key), allowed) or (
            f"allowed here: {', '.join(allowed)}" if allowed else None
        )
    elif kind == "missing":
        message = f"missing required key '{loc[-1]}'" if loc else "missing value"
    elif kind == "literal_error":
        expected = ctx.get("expected", "")
        message = f"expected {expected}, got {_show(value)}"
        options = [o.strip().strip("'") for o in str(expected).replace(" or ", ",").split(",")]
        hint = did_you_mean(str(value), [o for o in options if o])
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        message = f"must be {_BOUNDS[kind]} {bound}, got {_show(value)}"
    elif kind in _TYPES:
        message = f"expected {_TYPES[kind]}, got {_show(value)}"
        if len(path) == 2 and path[0] == "nodes" and isinstance(value, str):
            hint = f"write '{path[1]}: {{model: {value}}}'"
        elif path == ("edges",) and isinstance(value, dict):
            hint = "a list of edges: '- {to: a, from: labels}'"
    elif kind == "string_pattern_mismatch":
        message = f"{_show(value)} is not allowed here"
        hint = "use letters, digits, '_', '-' and '.', starting with a letter or digit"
        if path[-1:] == ("device",):
            hint = "auto, cpu, cuda or cuda:N"
    elif kind == "finite_number":
        message = f"must be a finite number, got {_show(value)}"
    elif kind in ("too_short", "too_long"):
        message = err["msg"][0].lower() + err["msg"][1:]
    else:
        msg = err["msg"]
        message = msg[0].lower() + msg[1:] if msg else kind
        # custom errors (a component reference, a value check) already say what they got
        if (
            isinstance(value, _SCALARS)
            and kind not in ("value_error", "assertion_error")
            and not kind.startswith("component")
            and ", got " not in message
        ):
            message += f", got {_show(value)}"
        message = message.replace("Value error, ", "").replace("value error, ", "")
    return SpecIssue(path, message, hint=hint)


def issues_from_validation(
    exc: ValidationError, root: type[BaseModel], prefix: Path = ()
) -> list[SpecIssue]:
    seen: set[tuple[Path, str]] = set()
    out: list[SpecIssue] = []
    for err in exc.errors(include_url=False):
        issue = issue_from_error(err, root, prefix)
        key = (issue.path, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


def unknown_name(kind: str, name: str, path: Path, known: list[str]) -> SpecIssue:
    return SpecIssue(path, f"unknown {kind} '{name}'", hint=choices_hint(name, known))
