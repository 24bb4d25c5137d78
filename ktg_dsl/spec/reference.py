"""docs/spec-reference.md, generated from the pydantic models and the registries so that the
reference can never drift from what ``ktg validate`` accepts (a test keeps it equal)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ..registry import REGISTRIES, load_builtins
from .schema import (
    ComponentRef,
    DataConfig,
    Defaults,
    DistributedConfig,
    EdgeChoice,
    EdgeConfig,
    NodeConfig,
    NumericRange,
    Objective,
    SearchConfig,
    Spec,
    TrainConfig,
    not_null,
)
from .self_supervised import (
    ColorJitter,
    Grayscale,
    Head,
    HorizontalFlip,
    Knn,
    RandomResizedCrop,
    SelfSupervised,
)

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("top level", Spec),
    ("data", DataConfig),
    ("train", TrainConfig),
    ("train.distributed", DistributedConfig),
    ("defaults", Defaults),
    ("nodes.<name>", NodeConfig),
    ("edges[i]", EdgeConfig),
    ("search", SearchConfig),
    ("search.objective", Objective),
    ("search.edges[i]", EdgeChoice),
    ("search.params[i]", NumericRange),
    ("self_supervised", SelfSupervised),
    ("self_supervised.head", Head),
    ("self_supervised.knn", Knn),
    ("self_supervised.augment[i]: random_resized_crop", RandomResizedCrop),
    ("self_supervised.augment[i]: horizontal_flip", HorizontalFlip),
    ("self_supervised.augment[i]: color_jitter", ColorJitter),
    ("self_supervised.augment[i]: grayscale", Grayscale),
]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else ""
        )
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, ComponentRef):
        return f"{annotation.kind}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    if isinstance(annotation, type):
        return {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        dumped = value.model_dump(by_alias=True, exclude_none=True)
        if isinstance(value, ComponentRef) or not dumped:
            return f"`{dumped}`" if dumped else ""
        return "see below"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "`[" + ", ".join(str(v.model_dump()) for v in value) + "]`"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _bounds(field: FieldInfo) -> str:
    out = []
    for meta in field.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                out.append(f"{sym} {getattr(meta, attr)}")
        if getattr(meta, "min_length", None):
            out.append(f"at least {meta.min_length}")
    return f" ({', '.join(out)})" if out else ""


def _section(title: str, model: type[BaseModel]) -> str:
    lines = [
        f"### `{title}`",
        "",
        (model.__doc__ or "").strip().split("\n\n")[0],
        "",
        "| key | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in model.model_fields.items():
        key = field.alias or name
        meaning = (field.description or "").replace("|", "\\|")
        kind, default = _type_name(field.annotation), _default(field)
        if field.json_schema_extra is not_null:  # absent by default, but null is refused
            kind, default = kind.removesuffix(" or null"), "absent"
        lines.append(f"| `{key}` | {kind}{_bounds(field)} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def _components(kind: str) -> str:
    lines = [
        f"### {kind}{'es' if kind.endswith('s') else 's'}",
        "",
        "| name | arguments (default) | what it is |",
        "| --- | --- | --- |",
    ]
    for comp in REGISTRIES[kind]:
        if not comp.factory.__module__.startswith("ktg_dsl."):
            continue
        args = ", ".join(
            f"`{n}`" + ("" if f.is_required() else f"={f.get_default(call_default_factory=True)!r}")
            for n, f in comp.params.model_fields.items()
        )
        summary = comp.summary().replace("|", "\\|").replace("``", "`")
        lines.append(f"| `{comp.name}` | {args or '-'} | {summary} |")
    return "\n".join(lines) + "\n"


def reference_markdown() -> str:
    load_builtins()
    parts = [
        "# Spec reference",
        "",
        "<!-- Generated by `ktg schema --reference -o docs/spec-reference.md`; do not edit. -->",
        "",
        "Every key a spec may hold, its type, default and meaning. Unknown keys are errors. "
        "A component (model, gate, loss, optimizer, scheduler, dataset, sampler, pruner) is "
        "written by name (`gate: through`) or as a mapping of `type` and its arguments "
        "(`loss: {type: kl, temperature: 4}`).",
        "",
        "## Sections",
        "",
    ]
    parts += [_section(title, model) for title, model in SECTIONS]
    parts += [
        "## Components",
        "",
        "Arguments are checked against each component's signature before anything is "
        "built. `ktg list KIND` prints the same, plugins included.",
        "",
    ]
    parts += [_components(kind) for kind in REGISTRIES]
    return "\n".join(parts)
