"""Losses on two-view projections (self-supervised graphs): SimCLR's NT-Xent (Chen et al.
2020) on a node's own two views, and between nodes DoGo's similarity-matrix KL (Bhat et al.,
CVPRW 2021) and a DisCo-style two-view feature MSE (Gao et al., ECCV 2022). Formulas and
defaults: docs/losses.md.

Every loss here reads a node's ``views``: its projections of the two augmented views of each
sample, ``[B, 2, D]`` (view 1 at ``[:, 0]``, view 2 at ``[:, 1]``). They compare samples with
each other, so a per-sample value is the sample's share of the batch loss, chosen so that the
batch mean is the original's loss exactly. Each also takes leading dimensions (``[..., B, 2,
D]``): the group kernels compute every edge of one kind in one call, the similarity matrices
batched like the logits KL's softmaxes.

Checked against the original KnowledgeTransferGraph repository (``ktg/losses.py``:
``SimCLRLoss``, ``SimilarityMatrixKLDivLoss``, ``TwoViewFeatureMSELoss``); where a formula
differs, the class says how and why.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import EdgeLoss, Shape
from .logits import KL

if TYPE_CHECKING:
    from torch import Tensor


def _full(x: Tensor) -> Tensor:
    """Two views ``[..., B, 2, D]``, in float32 for half-precision projections (AMP), float64
    kept (the reference tests). Anything else (a model's logits ``[B, C]`` on an edge that was
    not given views) is an error, not a loss computed on the wrong axes."""
    import torch

    if x.ndim < 3 or x.shape[-2] != 2:
        raise ValueError(
            f"a two-view loss compares a node's projections of two views, [B, 2, D], but got "
            f"a tensor of shape {tuple(x.shape)}: the edge's ends must give views"
        )
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def nt_xent_rows(views: Tensor, temperature: float) -> Tensor:
    """NT-Xent per sample of ``[..., B, 2, D]`` projections: ``[..., B]``, the mean of the
    sample's two anchors' losses."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(_full(views), dim=-1)
    b = z.shape[-3]
    flat = torch.cat([z[..., 0, :], z[..., 1, :]], dim=-2)  # [..., 2B, D]: view 1, view 2
    sim = flat @ flat.transpose(-1, -2) / temperature
    self_pair = torch.eye(2 * b, dtype=torch.bool, device=sim.device)
    # the anchor itself takes no part in its softmax (the lowest finite value, not -inf: no
    # NaN in the gradient of a row that a later mask zeroes)
    sim = sim.masked_fill(self_pair, float(torch.finfo(sim.dtype).min))
    partner = (torch.arange(2 * b, device=sim.device) + b) % (2 * b)  # i <-> i + B
    positive = sim.gather(-1, partner.expand(*sim.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    anchor = sim.logsumexp(-1) - positive  # [..., 2B]
    return 0.5 * (anchor[..., :b] + anchor[..., b:])


def cross_view_similarity(views: Tensor) -> Tensor:
    """``[..., B, B]``: the cosine similarity of each sample's view 1 with every sample's
    view 2 (rows: view 1)."""
    import torch.nn.functional as F

    z = F.normalize(_full(views), dim=-1)
    return z[..., 0, :] @ z[..., 1, :].transpose(-1, -2)


@dataclass(frozen=True)
class NTXent(EdgeLoss):
    """SimCLR's normalised temperature-scaled cross-entropy on the receiver's own two views.

    The 2B projections are L2-normalised; each is an anchor whose positive is the other view
    of its sample and whose negatives are the other 2B - 2 projections:
    ``l_a = -log(exp(s_a,p / T) / sum_{j != a} exp(s_a,j / T))``. A sample's value is the mean
    of its two anchors' losses, so the batch mean is the mean over the 2B anchors: the
    original's ``SimCLRLoss`` (cross-entropy summed over the 2B rows of [positive, negatives],
    divided by 2B), the same value. ``target`` is ignored (on the self edge the engine passes
    the receiver's own views)."""

    temperature: float = 0.3
    min_batch: ClassVar[int] = 2  # one sample has no negatives

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        return nt_xent_rows(logits, self.temperature)

    def group_key(self) -> Hashable:
        return ("nt_xent", self.temperature)

    def group_per_sample(
        self,
        receivers: Tensor,
        senders: Tensor | None,
        labels: Tensor,
        pair_r: Tensor,
        pair_s: Tensor | None,
    ) -> Tensor:
        """Every NT-Xent edge of this temperature, its receivers' matrices batched."""
        return nt_xent_rows(receivers, self.temperature).index_select(0, pair_r)

    def describe(self) -> str:
        return f"nt_xent T={self.temperature:g}"


@dataclass(frozen=True)
class SimilarityKL(EdgeLoss):
    """DoGo's similarity-matrix KL: for each model the B x B cosine similarities between its
    view-1 and view-2 projections, each row a softmax at T; ``T^2 KL(sender || receiver)`` per
    row (row i: sample i's view 1 against every view 2), the sender detached.

    The original's ``SimilarityMatrixKLDivLoss`` (via its ``KLDivLoss``) computes the same in
    probability space, ``p_s log(p_s / (p_r + 1e-10) + 1e-10)``, summed over a row and
    averaged over rows, times T^2; here it is in log space (log_softmax), without the 1e-10
    guards (the logits KL's computation, ``logits.KL``, on the matrices' rows): equal up to
    those guards, and no underflow when a row's softmax is confident.
    Cosine similarity: both normalise each projection (the original with torch's
    ``CosineSimilarity``, eps 1e-8 on the norms; here ``F.normalize``, eps 1e-12), which
    differ only for projections of norm ~0. The DoGo authors' own code (``criterion/kl.py``)
    differs in scale: T = 0.1, no T^2, and ``F.kl_div``'s element mean over all B x B entries
    (the row sum over B); ktg follows the KTG original, which the issue reproduces."""

    temperature: float = 0.3
    min_batch: ClassVar[int] = 2  # a 1 x 1 matrix's softmax is 1: no signal

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        return self._kl().per_sample(
            cross_view_similarity(logits), cross_view_similarity(target.detach())
        )

    def _kl(self) -> KL:
        """The logits KL at this temperature: each matrix row is a row of logits."""
        return KL("kl", temperature=self.temperature)

    def group_key(self) -> Hashable:
        return ("similarity_kl", self.temperature)

    def group_per_sample(
        self,
        receivers: Tensor,
        senders: Tensor | None,
        labels: Tensor,
        pair_r: Tensor,
        pair_s: Tensor | None,
    ) -> Tensor:
        """Every edge of this temperature: the distinct receivers' and senders' similarity
        matrices batched, then the logits KL's kernel (one log_softmax of each, then each
        pair's KL)."""
        assert senders is not None
        return self._kl().group_per_sample(
            cross_view_similarity(receivers),
            cross_view_similarity(senders),
            labels,
            pair_r,
            pair_s,
        )

    def describe(self) -> str:
        return f"similarity_kl T={self.temperature:g}"


@dataclass(frozen=True)
class ViewMSE(EdgeLoss):
    """The mean squared difference between the receiver's and the (detached) sender's
    projections of both views, as they are (not normalised): per sample, the mean over its two
    views and D dimensions, so that the batch mean is the original's
    ``TwoViewFeatureMSELoss`` (``MSELoss`` of the two models' [view 1; view 2] stacks)
    exactly. The original has no weight for it; neither has this. One sample is enough (no
    comparison between samples)."""

    def check_shapes(self, receiver: Shape, sender: Shape) -> str | None:
        """The projections (per sample ``[2, D]`` or ``[D]``) must have the same width."""
        if receiver[-1:] != sender[-1:]:
            return (
                f"view_mse compares projections element by element, but the receiver's are "
                f"{receiver[-1] if receiver else '?'} wide and the sender's "
                f"{sender[-1] if sender else '?'}; give both nodes projection heads of the "
                "same output width, or use similarity_kl (which compares B x B matrices)"
            )
        return None

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        diff = _full(logits) - _full(target.detach())
        return diff.pow(2).flatten(-2).mean(-1)

    def group_key(self) -> Hashable:
        return ("view_mse",)

    def group_per_sample(
        self,
        receivers: Tensor,
        senders: Tensor | None,
        labels: Tensor,
        pair_r: Tensor,
        pair_s: Tensor | None,
    ) -> Tensor:
        """Every view_mse edge at once: the pairs' differences in one tensor."""
        assert senders is not None and pair_s is not None
        return self.per_sample(receivers.index_select(0, pair_r), senders.index_select(0, pair_s))
