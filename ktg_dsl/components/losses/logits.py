"""Losses on logits: cross-entropy with the labels, KL between two models (Hinton et al. 2015,
the KTG paper's), MSE, decoupled KD (Zhao et al. 2022) and DIST (Huang et al. 2022). Formulas
and defaults: docs/losses.md."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import EdgeLoss

if TYPE_CHECKING:
    from torch import Tensor


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
        from ...engine.step import stacked_cross_entropy

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


@dataclass(frozen=True)
class DecoupledKD(EdgeLoss):
    """DKD: KL of the target-vs-rest probabilities (TCKD) plus KL among the non-target
    classes (NCKD), weighted alpha and beta, at temperature T, times T^2."""

    alpha: float = 1.0
    beta: float = 8.0
    temperature: float = 4.0
    needs_labels: bool = True

    def per_sample(self, logits: Tensor, target: Tensor, labels: Tensor) -> Tensor:  # type: ignore[override]
        """In log space: a confident model's other classes underflow to probability 0 (a
        logit gap past ~100 T in fp32), whose log made the loss NaN."""
        import torch.nn.functional as F

        t = self.temperature
        zr, zs = logits.float() / t, target.detach().float() / t
        gt = F.one_hot(labels, zr.shape[-1]).bool()
        # target class vs all the others, as two-bin log distributions
        br, bs = _two_bins(zr, gt), _two_bins(zs, gt)
        tckd = F.kl_div(br, bs, reduction="none", log_target=True).sum(-1)
        # among the non-target classes only (the target's logit pushed out of the softmax)
        low = _lowest(zr)
        lr = F.log_softmax(zr.masked_fill(gt, low), -1)
        ls = F.log_softmax(zs.masked_fill(gt, low), -1)
        nckd = (ls.exp() * (ls - lr)).masked_fill(gt, 0.0).sum(-1)
        return (self.alpha * tckd + self.beta * nckd) * (t * t)

    def describe(self) -> str:
        return f"dkd a={self.alpha:g} b={self.beta:g} T={self.temperature:g}"


@dataclass(frozen=True)
class Dist(EdgeLoss):
    """DIST: 1 - Pearson correlation of the two models' class probabilities, per sample
    (inter-class, weight beta) and per class over the batch (intra-class, weight gamma), times
    T^2. The intra-class term is a batch quantity: it is the same for every sample, so the
    batch mean of the per-sample values is the paper's loss."""

    beta: float = 1.0
    gamma: float = 1.0
    temperature: float = 1.0

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        t = self.temperature
        yr = F.softmax(logits.float() / t, -1)
        ys = F.softmax(target.detach().float() / t, -1)
        inter = 1.0 - _pearson(yr, ys)  # [B]
        intra = 1.0 - _pearson(yr.t(), ys.t()).mean()  # over the batch, per class
        return (self.beta * inter + self.gamma * intra) * (t * t)

    def describe(self) -> str:
        return f"dist b={self.beta:g} g={self.gamma:g} T={self.temperature:g}"


def _two_bins(z: Tensor, gt: Tensor) -> Tensor:
    """[B, 2]: the log-probability of the target class and of all the others together."""
    import torch

    logp = z.log_softmax(-1)
    rest = logp.masked_fill(gt, _lowest(logp)).logsumexp(-1)
    return torch.stack([logp[gt], rest], -1)


def _lowest(x: Tensor) -> float:
    """The most negative finite value of ``x``'s dtype: a logit that takes no part in a
    softmax, without the NaN that -inf brings into differences and gradients."""
    import torch

    return float(torch.finfo(x.dtype).min)


def _pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b``."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)
