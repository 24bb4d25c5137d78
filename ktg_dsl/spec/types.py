"""The value types a spec is made of: integers and numbers that refuse booleans, on/off
switches, plain names (no look-alike characters), and component references (``name`` or
``{type: name, <argument>: <value>}``). Torch-free."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError, PydanticKnownError

from ..registry import NOT_BOOL
from .messages import describe_odd, plain_spelling, shorten

LABELS = "labels"  # the name of the ground-truth source in edges (`from: labels`)


# numbers refuse booleans (the validators live with the registry, which gives every
# component argument the same check), booleans take only booleans
Int = Annotated[int, NOT_BOOL]
Bool = Annotated[bool, Strict()]
PosInt = Annotated[int, Field(ge=1), NOT_BOOL]
NonNegInt = Annotated[int, Field(ge=0), NOT_BOOL]


def auto_or_count(value: Any) -> Any:
    """``auto`` or a whole number from 1 to 4096, as one check: a union would report each of
    its alternatives failing, in pydantic's words."""
    if value == "auto" and isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise PydanticKnownError("int_type")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # as pydantic's integers take 2.0
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
        text = value.strip()  # a number YAML left as text ('2'), as the other integers take it
        # past 12 digits it is past any limit (and int() refuses 4,300 digits in Python's words)
        value = int(text) if len(text.lstrip("+-")) <= 12 else (0 if text[0] == "-" else 4097)
    if isinstance(value, int):
        if value < 1:
            raise PydanticKnownError("greater_than_equal", {"ge": 1})
        if value > 4096:
            raise PydanticKnownError("less_than_equal", {"le": 4096})
        return value
    raise PydanticCustomError(
        "literal_error", "expected 'auto' or an integer", {"expected": "'auto' or an integer"}
    )


def hinted(message: str, hint: str) -> PydanticCustomError:
    """A value error of the spec's own with its hint (spec/messages.py says both)."""
    return PydanticCustomError("value_with_hint", "{message}", {"message": message, "hint": hint})


MAX_GPU_INDEX = 127  # PyTorch keeps a device index in 8 bits: cuda:128 would read as cuda:-128


def _device_index(value: str) -> str:
    """``cuda:N`` with N written plainly (``cuda:00`` is no device to PyTorch) and in range."""
    kind, _, index = value.partition(":")
    if kind == "cuda" and index and not index.isascii():  # the pattern's \\d takes any digit
        odd = describe_odd(value)
        raise hinted(
            f"'{shorten(value)}' is not a device name",
            f"its {odd}" if odd else "write the GPU index in the digits 0-9",
        )
    if kind == "cuda" and index:
        if len(index) > 1 and index.startswith("0"):
            raise hinted(
                f"'{shorten(value)}' is not a device name",
                "write the GPU index without leading zeros: "
                f"cuda:{shorten(index.lstrip('0') or '0')}",
            )
        if len(index) > 3 or int(index) > MAX_GPU_INDEX:
            raise hinted(
                f"'{shorten(value)}' is not a device name",
                f"a GPU index is at most {MAX_GPU_INDEX}",
            )
    return value


DeviceName = Annotated[
    str, Field(pattern=r"^(auto|cpu|cuda|cuda:\d+)$"), AfterValidator(_device_index)
]


def version_not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be 1", {"expected": "1"})
    return value


def odd_name_error(name: str, what: str) -> PydanticCustomError | None:
    """The error for a name with an invisible or look-alike character ('small_сnn' with a
    Cyrillic с), which no registry or node name can match."""
    odd = describe_odd(name)
    if odd is None:
        return None
    return PydanticCustomError(
        "odd_character",
        "{message}",
        {
            "message": f"the {what} name '{shorten(name)}' is not plain text: its {odd}",
            "hint": f"retype it as '{shorten(plain_spelling(name))}'",
        },
    )


def _plain_name(value: str) -> str:
    error = odd_name_error(value, "node")
    if error is not None:
        raise error
    return value


NodeName = Annotated[str, AfterValidator(_plain_name)]
# A file or folder a spec names: ``~`` and ``~user`` expand to the home folder, as in a shell
UserPath = Annotated[str, AfterValidator(os.path.expanduser)]
TapName = Annotated[
    str,
    AfterValidator(_plain_name),
    Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"),
]
ModulePath = Annotated[
    str,
    AfterValidator(_plain_name),
    Field(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", max_length=300),
]


def _switch(value: Any) -> Any:
    # YAML 1.1 reads a bare on/off (also yes/no) as a boolean: accept what the user meant.
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


Switch = Annotated[
    Literal["auto", "on", "off"],
    BeforeValidator(_switch),
    WithJsonSchema({"anyOf": [{"enum": ["auto", "on", "off"]}, {"type": "boolean"}]}),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class ComponentRef(StrictModel):
    """A registered component: ``name`` or ``{type: name, <argument>: <value>, ...}``."""

    kind: ClassVar[str] = "component"
    type: str
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if isinstance(value, ComponentRef):
            return {"type": value.type, "args": dict(value.args)}
        if isinstance(value, str):
            cls._check_name(value)
            return {"type": value, "args": {}}
        if isinstance(value, dict):
            if "type" not in value:
                raise PydanticCustomError(
                    "component_type_missing",
                    f"a {cls.kind} written as a mapping needs 'type: <{cls.kind} name>'",
                )
            if not isinstance(value["type"], str):
                raise PydanticCustomError(
                    "component_type", f"'type' must be a {cls.kind} name (a string)"
                )
            cls._check_name(value["type"])
            return {"type": value["type"], "args": {k: v for k, v in value.items() if k != "type"}}
        raise PydanticCustomError(
            "component_ref",
            f"expected a {cls.kind} name or a mapping with 'type', got {_kind(value)}",
        )

    @classmethod
    def _check_name(cls, name: str) -> None:
        error = odd_name_error(name, cls.kind)
        if error is not None:
            raise error

    @model_serializer(mode="plain")
    def _dump(self) -> Any:
        return {"type": self.type, **self.args} if self.args else self.type

    def __str__(self) -> str:
        if not self.args:
            return self.type
        inner = ", ".join(f"{k}: {v}" for k, v in self.args.items())
        return f"{self.type}({inner})"


def _kind(value: Any) -> str:
    return {
        list: "a list",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


class ModelRef(ComponentRef):
    kind: ClassVar[str] = "model"


class GateRef(ComponentRef):
    kind: ClassVar[str] = "gate"


class LossRef(ComponentRef):
    kind: ClassVar[str] = "loss"


class OptimizerRef(ComponentRef):
    kind: ClassVar[str] = "optimizer"


class SchedulerRef(ComponentRef):
    kind: ClassVar[str] = "scheduler"


class DatasetRef(ComponentRef):
    kind: ClassVar[str] = "dataset"


class SamplerRef(ComponentRef):
    kind: ClassVar[str] = "sampler"


class PrunerRef(ComponentRef):
    kind: ClassVar[str] = "pruner"
