"""The JSON Schema of the spec, for editors (YAML language server) and other tools.

It is the pydantic models' own schema, with each component reference replaced by the exact
choices the registries hold: a name, or a mapping of ``type`` plus that component's arguments
(their types, bounds and defaults come from the component's signature).
"""

from __future__ import annotations

import json
from typing import Any

from ..registry import REGISTRIES, load_builtins
from .schema import ComponentRef, Spec

SCHEMA_ID = "https://ktg.dev/schemas/ktg-spec.schema.json"


def _component_choices(kind: str, defs: dict[str, Any], builtin_only: bool) -> dict[str, Any]:
    registry = REGISTRIES[kind]
    bare: list[str] = []
    mappings: list[dict[str, Any]] = []
    for comp in registry:
        if builtin_only and not comp.factory.__module__.startswith("ktg_dsl."):
            continue
        schema = comp.params.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        props = {"type": {"const": comp.name}, **schema.get("properties", {})}
        for prop in props.values():
            prop.pop("title", None)
        required = ["type", *schema.get("required", [])]
        if len(required) == 1:
            bare.append(comp.name)
        entry: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
        }
        if comp.summary():
            entry["description"] = comp.summary()
        mappings.append(entry)
    choices: list[dict[str, Any]] = []
    if bare:
        choices.append({"type": "string", "enum": bare})
    choices.extend(mappings)
    return {
        "anyOf": choices,
        "description": f"a {kind}: its name, or a mapping with 'type' and its arguments",
    }


def spec_json_schema(builtin_only: bool = False) -> dict[str, Any]:
    """The schema; ``builtin_only`` leaves out components registered by plugins."""
    load_builtins()
    schema = Spec.model_json_schema(by_alias=True)
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    extra: dict[str, Any] = {}
    for cls in ComponentRef.__subclasses__():
        if cls.__name__ in defs:
            defs[cls.__name__] = _component_choices(cls.kind, extra, builtin_only)
    defs.update(extra)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "ktg spec"
    return schema


def schema_text(builtin_only: bool = False) -> str:
    return json.dumps(spec_json_schema(builtin_only), indent=2, sort_keys=True) + "\n"
