"""Edge losses. A loss compares a receiver's logits with a target: the labels (on the labels
edge) or a sender's detached logits (on a node -> node edge).

Every loss returns a *per-sample* value ``[B]``; the engine multiplies it by the gate (and by a
per-sample gate's mask) and averages over the batch. A loss may also offer a group kernel
(``group_key`` and ``group_per_sample``, see ``ktg_dsl.engine.contracts.GroupKernel``): the
engine then computes every edge of that kind in one call. ``ce`` and ``kl`` do; their
``per_sample`` is the reference the kernel is tested against.
"""

from __future__ import annotations

from collections.abc import Hashable
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

    def group_key(self) -> Hashable:
        return ("ce", self.label_smoothing)

    def group_per_sample(
        self,
        receivers: Tensor,
        senders: Tensor | None,
        labels: Tensor,
        pair_r: Tensor,
        pair_s: Tensor | None,
    ) -> Tensor:
        """Every labels edge of this setting: one cross-entropy over the stacked receivers."""
        from ..engine.step import stacked_cross_entropy

        return stacked_cross_entropy(
            receivers.index_select(0, pair_r), labels, self.label_smoothing
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

    def group_key(self) -> Hashable:
        return ("kl", self.temperature)

    def group_per_sample(
        self,
        receivers: Tensor,
        senders: Tensor | None,
        labels: Tensor,
        pair_r: Tensor,
        pair_s: Tensor | None,
    ) -> Tensor:
        """Every KL edge of this temperature: one log_softmax of the distinct receivers and
        one of the distinct senders, then each (receiver, sender) pair's KL. Only pairs that
        exist are computed, so a sender's NaN reaches only its own receivers."""
        import torch.nn.functional as F

        assert senders is not None and pair_s is not None
        t = self.temperature
        logq = F.log_softmax(receivers / t, dim=-1)
        logp = F.log_softmax(senders / t, dim=-1)
        p = logp.exp()
        neg_entropy = (p * logp).sum(-1)  # [S, B]
        cross = (p.index_select(0, pair_s) * logq.index_select(0, pair_r)).sum(-1)
        return (neg_entropy.index_select(0, pair_s) - cross) * (t * t)  # [E, B]

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
