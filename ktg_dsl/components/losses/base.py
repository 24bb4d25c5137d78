"""What every edge loss is: a name, what it compares (its ``target``), and a per-sample value
``[B]`` of a receiver's output against a target. The engine multiplies it by the gate (and a
per-sample gate's mask) and averages over the batch. Optional capabilities, used where a loss
has them (``ktg_dsl.engine.contracts``): a group kernel (``group_key``, ``group_per_sample``)
that computes every edge of its kind at once; ``needs_labels`` (the per-sample value also gets
the labels); an edge-owned adapter (``make_adapter``) trained with the receiver; a shape check
(``check_shapes``) run before training.

Torch is imported inside the methods: building a loss (``ktg render`` describes them) stays
torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from torch import Tensor, nn

Target = Literal["labels", "logits", "features", "outputs"]
Shape = tuple[int, ...]  # a tap's shape without the batch dimension


@dataclass(frozen=True)
class EdgeLoss:
    name: str
    target: Target
    # the fewest samples per step the loss can be computed on (a loss comparing the samples of
    # a batch with each other needs more than one); checked before training (run/batch_need.py)
    min_batch: ClassVar[int] = 1

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def check_shapes(self, receiver: Shape, sender: Shape) -> str | None:
        """Why the two ends' shapes cannot be compared, and what to change; None if they
        can."""
        return None

    def make_adapter(self, receiver: Shape, sender: Shape) -> nn.Module | None:
        """A module owned by the edge and trained with the receiver, applied to the
        receiver's output before the loss; None for most losses."""
        return None
