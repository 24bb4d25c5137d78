"""What the engine asks of the components it runs. The gate and edge-loss contracts are
``ktg_dsl.contracts``' (every stage reads the same ones; the built-ins live in
``ktg_dsl.components``, registered by name, and the engine never imports them, nor the
registry); here are the engine's own: the optional group kernel of a loss, and a node's
forward output.

* a **gate** gives an edge's weight at time ``t`` of ``T``; a per-sample gate
  (``per_sample = True``) also gives a mask over the batch, computed from the sender's
  (detached) logits and the labels, every step;
* an **edge loss** gives a per-sample loss ``[B]`` of a receiver's output against a target
  (the labels, or a sender's detached output; with ``needs_labels`` the labels as a third
  argument too); it may also offer a **group kernel** that computes many edges of the same
  kind at once;
* a node's forward gives a :class:`NodeOutput`: its logits, plus named features when asked.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from torch import Tensor

from ..contracts import EdgeLoss, Gate

__all__ = ["EdgeLoss", "Gate", "GroupKernel", "NodeOutput"]


@runtime_checkable
class GroupKernel(Protocol):
    """A loss that computes every edge of one kind in one call. Edges whose losses give equal
    ``group_key()`` are computed together; ``group_per_sample`` gets the distinct receiving
    rows ``[R, B, ...]`` (with gradient), the distinct sending rows ``[S, B, ...]`` (detached;
    None on labels edges) and, per edge, the row of its receiver (``pair_r``) and sender
    (``pair_s``); it returns the per-sample losses ``[E, B]``, exactly what ``per_sample``
    would give edge by edge."""

    def group_key(self) -> Hashable: ...

    def group_per_sample(
        self,
        receivers: Tensor,
        senders: Tensor | None,
        labels: Tensor,
        pair_r: Tensor,
        pair_s: Tensor | None,
    ) -> Tensor: ...


@dataclass
class NodeOutput:
    """One node's forward: its logits ``[B, C]`` and the features read on the way (by tap
    name; empty unless an open edge needs them)."""

    logits: Tensor
    features: dict[str, Tensor] = field(default_factory=dict)
