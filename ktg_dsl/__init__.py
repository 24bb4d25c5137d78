"""ktg: declarative Knowledge Transfer Graphs.

    spec = ktg_dsl.load_spec("specs/quickstart.yaml")     # raises SpecError with every issue
    report = ktg_dsl.check_spec(spec)                     # errors, warnings, the linked graph
    program = ktg_dsl.compile_spec(spec)                  # imports torch
    engine = ktg_dsl.Engine(program)
    node = ktg_dsl.load_node("runs/x/latest/best/a.pt")   # a trained node, ready to predict

Importing this package does not import torch; ``compile_spec`` and ``Engine`` do, on first use.
"""

from __future__ import annotations

from typing import Any

from .check import CheckReport, check_spec, load_spec, loads_spec, validate_spec
from .errors import KtgRuntimeError, SpecError, SpecIssue
from .spec.schema import Spec

__version__ = "0.1.0"
__all__ = [
    "CheckReport",
    "Engine",
    "KtgRuntimeError",
    "Program",
    "Spec",
    "SpecError",
    "SpecIssue",
    "check_spec",
    "compile_spec",
    "load_node",
    "load_spec",
    "loads_spec",
    "validate_spec",
]

_LAZY = {
    "compile_spec": "run.data",
    "Program": "engine",
    "Engine": "engine",
    "load_node": "run.trained",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'ktg_dsl' has no attribute {name!r}")
