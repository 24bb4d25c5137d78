"""Where a pydantic error's location points in the spec: the model that validates a key path,
a key's schema default, and the path as the user wrote it, without pydantic's labels of union
members (``literal['auto']``, a tagged union's tag). Torch-free."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from ..errors import Path


def field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def unwrap(annotation: Any) -> list[Any]:
    """Annotated/Optional/Union -> the concrete alternatives."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(unwrap(arg))
        return out
    return [annotation]


# pydantic's labels of a union's members in an error's location: ``literal['auto']``,
# ``function-before[...]``, ``constrained-int``, ``int``; a tagged union's tag is the other kind
_MEMBER_LABEL = re.compile(r"[a-z][a-z-]*\[.*\]|constrained-[a-z]+|int|float|str|bool|none")


def _tag_of(model: type[BaseModel]) -> str | None:
    """The ``type`` a member of a tagged union (``Field(discriminator="type")``) stands for."""
    field = model.model_fields.get("type")
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def _member_label(alternatives: list[Any], part: Any) -> list[Any] | None:
    """The members of a union that ``part`` labels (the failing one, a tagged union's by its
    tag), or None when ``part`` is a real key of the spec, not pydantic's label."""
    if not isinstance(part, str) or len(alternatives) < 2:
        return None
    models = [a for a in alternatives if isinstance(a, type) and issubclass(a, BaseModel)]
    tagged = [m for m in models if _tag_of(m) == part or m.__name__ == part]
    if tagged:
        return tagged
    return alternatives if _MEMBER_LABEL.fullmatch(part) else None


def _annotations_at(root: type[BaseModel], loc: Path) -> list[Any]:
    """The annotations of the value at ``loc``, union members' labels followed."""
    current: list[Any] = [root]
    for part in loc:
        alternatives = [a for ann in current for a in unwrap(ann) if a is not type(None)]
        members = _member_label(alternatives, part)
        current = members if members is not None else _step(alternatives, part)
    return current


def plain_location(root: type[BaseModel], loc: Path) -> tuple[Path, bool]:
    """``loc`` without pydantic's labels of union members (``self_supervised.head.hidden.
    literal['auto']`` is ``self_supervised.head.hidden``; ``augment[0].grayscale.p`` is
    ``augment[0].p``), and whether it had any: the path the user wrote."""
    current: list[Any] = [root]
    out: list[Any] = []
    labelled = False
    for part in loc:
        alternatives = [a for ann in current for a in unwrap(ann) if a is not type(None)]
        members = _member_label(alternatives, part)
        if members is not None:
            current, labelled = members, True
            continue
        out.append(part)
        current = _step(alternatives, part)
    return tuple(out), labelled


def _step(alternatives: list[Any], part: Any) -> list[Any]:
    """The annotations of the value at ``part`` inside a value of one of ``alternatives``."""
    nxt: list[Any] = []
    for alt in alternatives:
        origin = typing.get_origin(alt)
        if isinstance(alt, type) and issubclass(alt, BaseModel) and isinstance(part, str):
            for name, field in alt.model_fields.items():
                if part in (name, field.alias):
                    nxt.append(field.annotation)
        elif origin in (list, tuple) and isinstance(part, int):
            nxt.append(typing.get_args(alt)[0])
        elif origin is dict:
            nxt.append(typing.get_args(alt)[1])
    return nxt


def model_at(root: type[BaseModel], loc: Path) -> type[BaseModel] | None:
    """The pydantic model that validates the value at ``loc`` (None when not a model); a
    union member's label in ``loc`` (a tagged union's tag) picks that member."""
    current = _annotations_at(root, loc)
    for alt in [a for ann in current for a in unwrap(ann)]:
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
