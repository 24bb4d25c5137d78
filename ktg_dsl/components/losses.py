"""Edge losses. A loss compares a receiver's logits with a target: the labels (on the labels
edge) or a sender's detached logits (on a node -> node edge).

Every loss returns a *per-sample* value ``[B]``; the engine multiplies it by the gate (and by the
per-sample mask of the ``correct`` gate) and averages over the batch. The KL loss is also
computed by the engine's fused path, many edges at once; ``per_sample`` here is its reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from ..registry import LOSSES

if TYPE_CHECKING:
    from torch import Tensor

Target = Literal["labels", "logits"]


@dataclass(frozen=True)
class EdgeLoss:
    name: str
    target: Target

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class CrossEntropy(EdgeLoss):
    label_smoothing: float = 0.0

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        return F.cross_entropy(
            logits.float(), target, reduction="none", label_smoothing=self.label_smoothing
        )

    def describe(self) -> str:
        return "ce" if not self.label_smoothing else f"ce ls={self.label_smoothing:g}"


@dataclass(frozen=True)
class KL(EdgeLoss):
    temperature: float = 1.0

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        t = self.temperature
        log_q = F.log_softmax(logits.float() / t, dim=-1)
        log_p = F.log_softmax(target.detach().float() / t, dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum(-1) * (t * t)

    def describe(self) -> str:
        return f"kl T={self.temperature:g}"


@dataclass(frozen=True)
class MSE(EdgeLoss):
    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        return (logits.float() - target.detach().float()).pow(2).mean(-1)


Temperature = Annotated[float, Field(gt=0.0, le=1000.0)]


@LOSSES.register(target="labels")
def ce(label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0) -> EdgeLoss:
    """Cross-entropy with the ground-truth labels (the labels edge)."""
    return CrossEntropy("ce", "labels", label_smoothing=label_smoothing)


@LOSSES.register(target="logits")
def kl(temperature: Temperature = 1.0) -> EdgeLoss:
    """KL(p_sender || p_receiver), p = softmax(z / T), sender detached, times T^2."""
    return KL("kl", "logits", temperature=temperature)


@LOSSES.register(target="logits")
def mse() -> EdgeLoss:
    """Mean squared difference of the logits (sender detached)."""
    return MSE("mse", "logits")
