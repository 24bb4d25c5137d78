"""What the engine asks of the components it runs. Gates and losses are duck-typed: any object
with these methods plugs in (the built-ins live in ``ktg_dsl.components``, registered by name;
the engine never imports them, nor the registry).

* a **gate** gives an edge's weight at time ``t`` of ``T``; a per-sample gate
  (``per_sample = True``) also gives a mask over the batch, computed from the sender's
  (detached) logits and the labels, every step;
* an **edge loss** gives a per-sample loss ``[B]`` of a receiver's output against a target
  (the labels, or a sender's detached output); it may also offer a **group kernel** that
  computes many edges of the same kind at once;
* a node's forward gives a :class:`NodeOutput`: its logits, plus named features when asked.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from torch import Tensor


class Gate(Protocol):
    @property
    def per_sample(self) -> bool:
        """Whether the gate also weights each sample (``sample_mask``)."""
        ...

    def weight(self, t: int, T: int) -> float:
        """The edge's weight at time index ``t`` of ``T`` (host side, no tensors)."""
        ...

    def sample_mask(self, sender_logits: Tensor, labels: Tensor) -> Tensor | None:
        """Per-sample weights ``[B]`` (float) for a per-sample gate, else None. On a labels
        edge the sender is the receiving node itself."""
        ...


class EdgeLoss(Protocol):
    name: str

    def per_sample(self, receiver: Tensor, target: Tensor) -> Tensor:
        """The loss of each sample ``[B]``: ``receiver`` (with gradient) against ``target``,
        the labels or a sender's detached output."""
        ...


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
