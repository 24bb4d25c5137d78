"""Losses on intermediate features (taps), or on any two outputs of equal kind: FitNet hints
(Romero et al. 2015), attention transfer (Zagoruyko & Komodakis 2017), similarity-preserving
KD (Tung & Mori 2019) and relational KD (Park et al. 2019). Formulas and defaults:
docs/losses.md.

Relational losses (similarity, rkd) compare samples with each other; their per-sample value is
a sample's row of the batch relation, so that the batch mean is the paper's loss exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import EdgeLoss, Shape

if TYPE_CHECKING:
    from torch import Tensor, nn


def _dims(shape: Shape) -> str:
    return "x".join(map(str, shape))


@dataclass(frozen=True)
class Hint(EdgeLoss):
    """FitNet: a learnable regressor (1x1 conv + BN, or linear + BN for vectors) maps the
    receiver's tap to the sender's shape; the loss is the mean squared difference, times
    ``weight``. The regressor belongs to the edge and trains with the receiver."""

    weight: float = 100.0

    def check_shapes(self, receiver: Shape, sender: Shape) -> str | None:
        if len(receiver) != len(sender) or len(receiver) not in (1, 3):
            return (
                f"hint maps the receiver's tap ({_dims(receiver)}) onto the sender's "
                f"({_dims(sender)}): both must be feature maps [C, H, W] or both vectors [D]; "
                "tap layers of the same kind"
            )
        if len(receiver) == 3 and receiver[1:] != sender[1:]:
            return (
                f"hint's 1x1 regressor keeps the spatial size, but the receiver's tap is "
                f"{_dims(receiver[1:])} and the sender's {_dims(sender[1:])}; tap layers of "
                "the same resolution"
            )
        return None

    def make_adapter(self, receiver: Shape, sender: Shape) -> nn.Module | None:
        from torch import nn

        if len(receiver) == 3:
            return nn.Sequential(
                nn.Conv2d(receiver[0], sender[0], 1, bias=False), nn.BatchNorm2d(sender[0])
            )
        return nn.Sequential(
            nn.Linear(receiver[0], sender[0], bias=False), nn.BatchNorm1d(sender[0])
        )

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        diff = logits.float() - target.detach().float()
        return self.weight * diff.pow(2).flatten(1).mean(1)

    def describe(self) -> str:
        return "hint" if self.weight == 100.0 else f"hint w={self.weight:g}"


def attention_map(f: Tensor, p: float) -> Tensor:
    """AT's spatial attention: the channel mean of |F|^p, flattened and L2-normalised."""
    import torch.nn.functional as F

    return F.normalize(f.abs().pow(p).mean(1).flatten(1), dim=1)


@dataclass(frozen=True)
class Attention(EdgeLoss):
    """AT: the squared distance between the two attention maps, averaged over positions,
    times ``weight``. Maps of different sizes: the larger feature map is average-pooled to
    the smaller first (one side must divide the other)."""

    p: float = 2.0
    weight: float = 1000.0

    def check_shapes(self, receiver: Shape, sender: Shape) -> str | None:
        if len(receiver) != 3 or len(sender) != 3:
            return (
                f"attention compares feature maps [C, H, W], but the taps give "
                f"{_dims(receiver)} and {_dims(sender)}; tap convolutional layers"
            )
        (hr, wr), (hs, ws) = receiver[1:], sender[1:]
        small, large = sorted([(hr, wr), (hs, ws)])
        if large[0] % small[0] or large[1] % small[1]:
            return (
                f"attention pools the larger map to the smaller, but {hr}x{wr} and {hs}x{ws} "
                "do not divide; tap layers whose resolutions are equal or a multiple of "
                "each other"
            )
        return None

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        r, s = logits.float(), target.detach().float()
        if r.shape[-2:] != s.shape[-2:]:  # pool the larger map to the smaller
            h, w = min(tuple(r.shape[-2:]), tuple(s.shape[-2:]))
            r, s = F.adaptive_avg_pool2d(r, (h, w)), F.adaptive_avg_pool2d(s, (h, w))
        return self.weight * (attention_map(r, self.p) - attention_map(s, self.p)).pow(2).mean(1)

    def describe(self) -> str:
        return f"attention p={self.p:g}"


@dataclass(frozen=True)
class Similarity(EdgeLoss):
    """SP: each output's batch Gram matrix, rows L2-normalised; the squared Frobenius
    distance between the two, over B^2, times ``weight``."""

    weight: float = 3000.0

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        r = logits.float().flatten(1)
        s = target.detach().float().flatten(1)
        gr, gs = F.normalize(r @ r.t(), dim=1), F.normalize(s @ s.t(), dim=1)
        return self.weight * (gs - gr).pow(2).sum(1) / r.shape[0]

    def describe(self) -> str:
        return "similarity" if self.weight == 3000.0 else f"similarity w={self.weight:g}"


def pairwise_distances(e: Tensor, eps: float = 1e-12) -> Tensor:
    """Euclidean distances between the rows of ``e``, zero on the diagonal (RKD's pdist)."""
    import torch

    sq = e.pow(2).sum(1)
    d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps).sqrt()
    return d * (1 - torch.eye(len(e), device=e.device, dtype=e.dtype))


@dataclass(frozen=True)
class Relational(EdgeLoss):
    """RKD: Huber distance between the two outputs' normalised pairwise distances (weight
    ``distance``) and between their angles at every vertex (weight ``angle``), times
    ``weight``; outputs are flattened to vectors."""

    distance: float = 25.0
    angle: float = 50.0
    weight: float = 1.0
    min_batch: ClassVar[int] = 2  # one sample has no distance to another: the mean is NaN

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        r = logits.float().flatten(1)
        s = target.detach().float().flatten(1)
        dr, ds = pairwise_distances(r), pairwise_distances(s)
        dr, ds = dr / dr[dr > 0].mean(), ds / ds[ds > 0].mean()
        dist = F.smooth_l1_loss(dr, ds, reduction="none").mean(1)
        ar, as_ = _angles(r), _angles(s)
        ang = F.smooth_l1_loss(ar, as_, reduction="none").flatten(1).mean(1)
        return self.weight * (self.distance * dist + self.angle * ang)

    def describe(self) -> str:
        return f"rkd d={self.distance:g} a={self.angle:g}"


def _angles(e: Tensor) -> Tensor:
    """cos of the angle at vertex i between (e_j - e_i) and (e_k - e_i): ``[B, B, B]``."""
    import torch.nn.functional as F

    v = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
    return v @ v.transpose(1, 2)
