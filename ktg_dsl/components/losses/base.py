"""The built-in edge losses' base: a name, and the contract's defaults
(``ktg_dsl.contracts.EdgeLoss``: a per-sample value ``[B]`` of a receiver's output against a
target; ``needs_labels``, an edge-owned adapter ``make_adapter``, a shape check
``check_shapes``). What a loss compares (labels, logits, features, outputs, views) is
its registration's ``target`` (``registry.LossMeta``); views: a node's projections of two
augmented views, ``[B, 2, D]``. Optional, used where a loss has it: a group
kernel (``group_key``, ``group_per_sample``, ``ktg_dsl.engine.contracts.GroupKernel``) that
computes every edge of its kind at once.

Torch is imported inside the methods: building a loss (the check stage builds every edge's
loss once) stays torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ... import contracts
from ...contracts import Shape

Target = Literal["labels", "logits", "features", "outputs", "views"]

__all__ = ["EdgeLoss", "Shape", "Target"]


@dataclass(frozen=True)
class EdgeLoss(contracts.EdgeLoss):
    name: str

    def describe(self) -> str:
        return self.name
