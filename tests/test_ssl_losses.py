"""The two-view (self-supervised) losses against independent plain-PyTorch implementations of
their papers' formulas, in float64: NT-Xent as explicit loops over the 2B anchors and as one
masked 2B x 2B cross-entropy, the similarity-matrix KL with torch's cosine_similarity and
F.kl_div, the two-view MSE with F.mse_loss. Values per sample and as the batch mean, and the
gradients with respect to the receiver; the group kernels against the per-edge values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ktg_dsl.components.losses import LOSSES, NTXent, SimilarityKL, ViewMSE


def views(b: int, d: int, seed: int) -> Tensor:
    return torch.randn(b, 2, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- the references


def nt_xent_loops(z: Tensor, t: float) -> Tensor:
    """SimCLR's l(i, j) anchor by anchor; [B]: the mean of each sample's two anchors."""
    b = z.shape[0]
    rows = [z[i, 0] for i in range(b)] + [z[i, 1] for i in range(b)]
    anchors = []
    for a in range(2 * b):
        p = (a + b) % (2 * b)

        def s(j: int, a: int = a) -> Tensor:
            return F.cosine_similarity(rows[a], rows[j], dim=0, eps=0.0) / t

        denominator = sum(torch.exp(s(j)) for j in range(2 * b) if j != a)
        anchors.append(-torch.log(torch.exp(s(p)) / denominator))
    return torch.stack([(anchors[i] + anchors[i + b]) / 2 for i in range(b)])


def nt_xent_cross_entropy(z: Tensor, t: float) -> Tensor:
    """The 2B x 2B similarity matrix, self pairs masked out, positives as the class."""
    b = z.shape[0]
    flat = F.normalize(torch.cat([z[:, 0], z[:, 1]]), dim=1)
    sim = (flat @ flat.t() / t).masked_fill(torch.eye(2 * b, dtype=torch.bool), -math.inf)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return F.cross_entropy(sim, target)


def similarity_kl_reference(r: Tensor, s: Tensor, t: float) -> Tensor:
    """DoGo: KL(softmax(sim_s / T) || softmax(sim_r / T)) per row, times T^2; [B]."""

    def sim(v: Tensor) -> Tensor:
        return F.cosine_similarity(v[:, 0].unsqueeze(1), v[:, 1].unsqueeze(0), dim=2)

    log_q = F.log_softmax(sim(r) / t, dim=1)
    p = F.softmax(sim(s.detach()) / t, dim=1)
    return F.kl_div(log_q, p, reduction="none").sum(1) * t * t


def view_mse_reference(r: Tensor, s: Tensor) -> Tensor:
    """DisCo-style: MSE of the [view 1; view 2] stacks of the two models (batch mean)."""
    return F.mse_loss(torch.cat([r[:, 0], r[:, 1]]), torch.cat([s[:, 0], s[:, 1]]).detach())


# ---------------------------------------------------------------- the comparisons


def value_and_grad(fn, r: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[no-untyped-def]
    r = r.detach().clone().requires_grad_()
    out = fn(r)
    (grad,) = torch.autograd.grad(out.mean(), r)
    return out.detach(), grad


@pytest.mark.parametrize("t", [0.3, 1.0])
def test_nt_xent_matches_the_anchor_loops_and_the_masked_cross_entropy(t: float) -> None:
    z = views(5, 7, seed=1)
    loss = NTXent("nt_xent", temperature=t)
    mine, grad_mine = value_and_grad(lambda r: loss.per_sample(r, r), z)
    loops, grad_loops = value_and_grad(lambda r: nt_xent_loops(r, t), z)
    assert mine.shape == (5,) and mine.dtype == torch.float64
    torch.testing.assert_close(mine, loops, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_mine, grad_loops, rtol=1e-9, atol=1e-12)
    ce, grad_ce = value_and_grad(lambda r: nt_xent_cross_entropy(r, t), z)
    torch.testing.assert_close(mine.mean(), ce, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_mine, grad_ce, rtol=1e-9, atol=1e-12)


def test_nt_xent_ignores_its_target_and_is_low_when_views_agree() -> None:
    z = views(6, 4, seed=2)
    loss = NTXent("nt_xent")
    torch.testing.assert_close(loss.per_sample(z, z), loss.per_sample(z, torch.zeros_like(z)))
    same = z[:, :1].expand(-1, 2, -1)  # both views alike: the positive is the closest
    assert loss.per_sample(same, same).mean() < loss.per_sample(z, z).mean()


@pytest.mark.parametrize("t", [0.3, 2.0])
def test_similarity_kl_matches_dogo(t: float) -> None:
    r, s = views(6, 5, seed=3), views(6, 9, seed=4)  # the two nodes' widths may differ
    loss = SimilarityKL("similarity_kl", temperature=t)
    mine, grad_mine = value_and_grad(lambda x: loss.per_sample(x, s), r)
    ref, grad_ref = value_and_grad(lambda x: similarity_kl_reference(x, s, t), r)
    assert mine.shape == (6,)
    # computed in float32 (the logits KL's precision under AMP), the reference in float64
    torch.testing.assert_close(mine, ref.float(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_mine, grad_ref, rtol=1e-4, atol=1e-7)
    assert float(loss.per_sample(s, s).abs().max()) < 1e-12  # a model against itself: 0


def test_similarity_kl_sends_no_gradient_to_the_sender() -> None:
    r, s = views(4, 3, seed=5), views(4, 3, seed=6).requires_grad_()
    SimilarityKL("similarity_kl").per_sample(r, s).mean()  # no error: s is detached inside
    out = SimilarityKL("similarity_kl").per_sample(r.requires_grad_(), s).mean()
    assert torch.autograd.grad(out, s, allow_unused=True) == (None,)


def test_view_mse_matches_the_stacked_mse() -> None:
    r, s = views(5, 6, seed=7), views(5, 6, seed=8)
    loss = ViewMSE("view_mse")
    mine, grad_mine = value_and_grad(lambda x: loss.per_sample(x, s), r)
    ref, grad_ref = value_and_grad(lambda x: view_mse_reference(x, s), r)
    assert mine.shape == (5,)
    torch.testing.assert_close(mine.mean(), ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad_mine, grad_ref, rtol=1e-12, atol=1e-14)
    per_sample = torch.stack([F.mse_loss(r[i], s[i]) for i in range(5)])
    torch.testing.assert_close(mine, per_sample)


def test_group_kernels_give_what_each_edge_gives() -> None:
    nodes = torch.stack([views(4, 5, seed=10 + i) for i in range(3)])  # [3 nodes, B, 2, D]
    pair_r, pair_s = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    labels = torch.zeros(4, dtype=torch.long)
    for loss, tol in ((SimilarityKL("similarity_kl"), 1e-6), (ViewMSE("view_mse"), 1e-14)):
        grouped = loss.group_per_sample(nodes, nodes, labels, pair_r, pair_s)
        each = [loss.per_sample(nodes[r], nodes[s]) for r, s in zip(pair_r, pair_s, strict=True)]
        torch.testing.assert_close(grouped, torch.stack(each).to(grouped.dtype), rtol=tol, atol=tol)
    nt = NTXent("nt_xent")
    grouped = nt.group_per_sample(nodes, None, labels, torch.tensor([2, 0]), None)
    torch.testing.assert_close(grouped[0], nt.per_sample(nodes[2], nodes[2]))
    torch.testing.assert_close(grouped[1], nt.per_sample(nodes[0], nodes[0]))


def test_half_precision_views_are_computed_in_float32() -> None:
    z = views(4, 8, seed=20)
    loss = NTXent("nt_xent")
    half = loss.per_sample(z.half(), z.half())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half.double(), loss.per_sample(z, z), rtol=5e-3, atol=5e-3)


def test_registered_as_views_losses_with_the_original_defaults() -> None:
    for name, cls in (("nt_xent", NTXent), ("similarity_kl", SimilarityKL)):
        comp = LOSSES.get(name)
        assert comp.meta.target == "views"
        built = comp.build({})
        assert isinstance(built, cls) and built.temperature == 0.3 and built.min_batch == 2
    assert LOSSES.get("view_mse").meta.target == "views"
    assert isinstance(LOSSES.get("view_mse").build({}), ViewMSE)
    hook = LOSSES.get("nt_xent").meta.check
    assert hook is not None
    with pytest.raises(ValueError, match="too small"):
        hook({"temperature": 1e-30})


def test_view_mse_says_when_the_projection_widths_differ() -> None:
    loss = ViewMSE("view_mse")
    assert loss.check_shapes((2, 128), (2, 128)) is None
    message = loss.check_shapes((2, 128), (2, 64))
    assert message is not None and "128" in message and "64" in message
    assert "similarity_kl" in message
    assert SimilarityKL("similarity_kl").check_shapes((2, 128), (2, 64)) is None


def test_logits_instead_of_views_are_an_error() -> None:
    logits = torch.randn(8, 10)
    for loss in (NTXent("nt_xent"), SimilarityKL("similarity_kl"), ViewMSE("view_mse")):
        with pytest.raises(ValueError, match=r"\[B, 2, D\], but got a tensor of shape \(8, 10\)"):
            loss.per_sample(logits, logits)
