"""Check every component a spec names against its registry: the name exists, and its arguments
fit the component's signature (types, bounds, unknown arguments)."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import Path, SpecIssue
from ..registry import REGISTRIES, Component, UnknownComponentError
from .locations import unwrap
from .messages import issues_from_validation
from .schema import ComponentRef, Spec


def lookup(ref: ComponentRef) -> Component:
    return REGISTRIES[ref.kind].get(ref.type)


def check_ref(ref: ComponentRef, path: Path, by_name: bool = False) -> list[SpecIssue]:
    """Issues of one reference; ``by_name``: it was written as a bare name, not a mapping."""
    try:
        comp = lookup(ref)
    except UnknownComponentError as exc:
        where = path if by_name else (*path, "type")
        return [SpecIssue(where, f"unknown {ref.kind} '{ref.type}'", hint=exc.hint)]
    try:
        values = comp.check(ref.args)
    except ValidationError as exc:
        return issues_from_validation(exc, comp.params, prefix=path)
    check = comp.meta.check
    if check is not None:
        try:
            check(values.model_dump())
        except (ValueError, TypeError) as exc:
            return [SpecIssue(path, str(exc))]
    return []


def component_issues(spec: Spec) -> list[SpecIssue]:
    return data_component_issues(spec.raw)


def data_component_issues(data: Any) -> list[SpecIssue]:
    """Component checks on raw spec data, guided by the schema: they run even when other parts
    of the spec do not validate, so that one round reports every problem."""
    issues: list[SpecIssue] = []
    for path, ref, by_name in _raw_refs(data, Spec, ()):
        issues.extend(check_ref(ref, path, by_name))
    return issues


def _raw_refs(value: Any, annotation: Any, path: Path) -> Iterator[tuple[Path, ComponentRef, bool]]:
    for alt in unwrap(annotation):
        origin = typing.get_origin(alt)
        if isinstance(alt, type) and issubclass(alt, ComponentRef):
            try:
                ref = alt.model_validate(value)
            except ValidationError:
                return  # its shape is wrong: the schema pass reports that
            yield path, ref, isinstance(value, str)
            return
        if isinstance(alt, type) and issubclass(alt, BaseModel) and isinstance(value, dict):
            fields = {(f.alias or n): f for n, f in alt.model_fields.items()}
            fields.update(alt.model_fields)
            for key, item in value.items():
                if key in fields:
                    yield from _raw_refs(item, fields[key].annotation, (*path, key))
            return
        if origin is list and isinstance(value, list):
            for i, item in enumerate(value):
                yield from _raw_refs(item, typing.get_args(alt)[0], (*path, i))
            return
        if origin is dict and isinstance(value, dict):
            for key, item in value.items():
                yield from _raw_refs(item, typing.get_args(alt)[1], (*path, key))
            return


def resolved_args(ref: ComponentRef) -> dict[str, Any]:
    """The reference's arguments with every default filled in (the ref must be valid)."""
    values: dict[str, Any] = lookup(ref).check(ref.args).model_dump()
    return values


def build(ref: ComponentRef, **injected: Any) -> Any:
    return lookup(ref).build(ref.args, **injected)


def resolve_refs(value: Any) -> Any:
    """A copy of a spec (or part) whose component references spell out every argument."""
    if isinstance(value, ComponentRef):
        return type(value).model_validate({"type": value.type, **resolved_args(value)})
    if isinstance(value, BaseModel):
        updates = {name: resolve_refs(getattr(value, name)) for name in type(value).model_fields}
        new = value.model_copy(update=updates)
        return new
    if isinstance(value, list):
        return [resolve_refs(v) for v in value]
    if isinstance(value, dict):
        return {k: resolve_refs(v) for k, v in value.items()}
    return value
