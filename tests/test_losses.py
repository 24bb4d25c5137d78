"""Every distillation loss against an independent plain-PyTorch implementation of its paper's
formula, written the way the authors' (or the standard benchmark's) code writes it, on fixed
tensors: the batch mean of ktg's per-sample values must equal the reference loss, and so must
the gradients with respect to the receiver."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ktg_dsl.components.losses import (
    Attention,
    DecoupledKD,
    Dist,
    Hint,
    Relational,
    Similarity,
)


def fixed(*shape: int, seed: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- the references


def at_reference(f_s: Tensor, f_t: Tensor, p: float = 2.0) -> Tensor:
    """RepDistiller's Attention.at_loss (Zagoruyko & Komodakis's at), beta 1000."""

    def at(f: Tensor) -> Tensor:
        return F.normalize(f.pow(p).mean(1).reshape(f.size(0), -1))

    return 1000.0 * (at(f_s) - at(f_t)).pow(2).mean()


def at_pooled_reference(f_s: Tensor, f_t: Tensor) -> Tensor:
    """mdistiller's single_stage_at_loss: the larger map pooled to the smaller."""
    s_h, t_h = f_s.shape[2], f_t.shape[2]
    if s_h > t_h:
        f_s = F.adaptive_avg_pool2d(f_s, (t_h, t_h))
    elif s_h < t_h:
        f_t = F.adaptive_avg_pool2d(f_t, (s_h, s_h))
    return at_reference(f_s, f_t)


def sp_reference(f_s: Tensor, f_t: Tensor) -> Tensor:
    """Tung & Mori's similarity loss (mdistiller's similarity_loss), gamma 3000."""
    bsz = f_s.shape[0]
    f_s, f_t = f_s.reshape(bsz, -1), f_t.reshape(bsz, -1)
    g_s = F.normalize(torch.mm(f_s, torch.t(f_s)))
    g_t = F.normalize(torch.mm(f_t, torch.t(f_t)))
    diff = g_t - g_s
    return 3000.0 * (diff * diff).view(-1, 1).sum(0)[0] / (bsz * bsz)


def pdist(e: Tensor, eps: float = 1e-12) -> Tensor:
    e_square = e.pow(2).sum(dim=1)
    prod = e @ e.t()
    res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps)
    res = res.sqrt().clone()
    res[range(len(e)), range(len(e))] = 0
    return res


def rkd_reference(student: Tensor, teacher: Tensor) -> Tensor:
    """Park et al.'s RKD (the authors' RkdDistance + RKdAngle), weights 25 and 50."""
    student, teacher = student.flatten(1), teacher.flatten(1)
    with torch.no_grad():
        t_d = pdist(teacher)
        t_d = t_d / t_d[t_d > 0].mean()
    d = pdist(student)
    d = d / d[d > 0].mean()
    loss_d = F.smooth_l1_loss(d, t_d, reduction="mean")
    with torch.no_grad():
        td = teacher.unsqueeze(0) - teacher.unsqueeze(1)
        norm_td = F.normalize(td, p=2, dim=2)
        t_angle = torch.bmm(norm_td, norm_td.transpose(1, 2)).view(-1)
    sd = student.unsqueeze(0) - student.unsqueeze(1)
    norm_sd = F.normalize(sd, p=2, dim=2)
    s_angle = torch.bmm(norm_sd, norm_sd.transpose(1, 2)).view(-1)
    loss_a = F.smooth_l1_loss(s_angle, t_angle, reduction="mean")
    return 25.0 * loss_d + 50.0 * loss_a


def dkd_reference(z_s: Tensor, z_t: Tensor, target: Tensor, alpha=1.0, beta=8.0, t=4.0) -> Tensor:
    """Zhao et al.'s dkd_loss, as mdistiller writes it."""
    gt_mask = torch.zeros_like(z_s).scatter_(1, target.unsqueeze(1), 1).bool()
    other_mask = torch.ones_like(z_s).scatter_(1, target.unsqueeze(1), 0).bool()

    def cat_mask(p: Tensor) -> Tensor:
        return torch.cat(
            [(p * gt_mask).sum(1, keepdim=True), (p * other_mask).sum(1, keepdim=True)], 1
        )

    p_s = cat_mask(F.softmax(z_s / t, dim=1))
    p_t = cat_mask(F.softmax(z_t / t, dim=1))
    tckd = F.kl_div(torch.log(p_s), p_t, reduction="sum") * t**2 / target.shape[0]
    p_t2 = F.softmax(z_t / t - 1000.0 * gt_mask, dim=1)
    log_p_s2 = F.log_softmax(z_s / t - 1000.0 * gt_mask, dim=1)
    nckd = F.kl_div(log_p_s2, p_t2, reduction="sum") * t**2 / target.shape[0]
    return alpha * tckd + beta * nckd


def dist_reference(z_s: Tensor, z_t: Tensor, beta=1.0, gamma=1.0, tau=1.0) -> Tensor:
    """Huang et al.'s DIST (the official dist_kd.py)."""

    def cos(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)

    def pearson(a: Tensor, b: Tensor) -> Tensor:
        return cos(a - a.mean(1).unsqueeze(1), b - b.mean(1).unsqueeze(1))

    def inter(y_s: Tensor, y_t: Tensor) -> Tensor:
        return 1 - pearson(y_s, y_t).mean()

    y_s, y_t = (z_s / tau).softmax(dim=1), (z_t / tau).softmax(dim=1)
    intra = inter(y_s.transpose(0, 1), y_t.transpose(0, 1))
    return beta * tau**2 * inter(y_s, y_t) + gamma * tau**2 * intra


# ---------------------------------------------------------------- the comparisons

Case = tuple[object, Callable[..., Tensor], tuple[int, ...], tuple[int, ...]]
CASES: dict[str, Case] = {
    "attention": (Attention("attention"), at_reference, (6, 8, 4, 4), (6, 16, 4, 4)),
    "attention pooled": (
        Attention("attention"),
        at_pooled_reference,
        (6, 8, 8, 8),
        (6, 16, 4, 4),
    ),
    "similarity": (Similarity("similarity"), sp_reference, (6, 8, 4, 4), (6, 5, 2, 2)),
    "rkd": (Relational("rkd"), rkd_reference, (7, 12), (7, 20)),
    "rkd on maps": (Relational("rkd"), rkd_reference, (5, 3, 2, 2), (5, 4, 2, 2)),
    "dist": (Dist("dist"), dist_reference, (9, 10), (9, 10)),
    "dist T=4": (
        Dist("dist", beta=2.0, gamma=0.5, temperature=4.0),
        lambda s, t: dist_reference(s, t, beta=2.0, gamma=0.5, tau=4.0),
        (9, 10),
        (9, 10),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_the_reference(name: str) -> None:
    loss, reference, r_shape, s_shape = CASES[name]
    r = fixed(*r_shape, seed=1).relu().requires_grad_()  # post-ReLU features, as tapped
    s = fixed(*s_shape, seed=2).relu()
    mine = loss.per_sample(r, s)  # type: ignore[attr-defined]
    assert mine.shape == (r_shape[0],)
    (grad_mine,) = torch.autograd.grad(mine.mean(), r)
    r2 = r.detach().clone().requires_grad_()
    ref = reference(r2, s)
    (grad_ref,) = torch.autograd.grad(ref, r2)
    torch.testing.assert_close(mine.mean(), ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_mine, grad_ref, rtol=1e-4, atol=1e-8)


def test_dkd_matches_the_reference_with_its_labels() -> None:
    z_s = fixed(8, 10, seed=3).requires_grad_()
    z_t = fixed(8, 10, seed=4)
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(5))
    loss = DecoupledKD("dkd")
    mine = loss.per_sample(z_s, z_t, y)
    (grad_mine,) = torch.autograd.grad(mine.mean(), z_s)
    z2 = z_s.detach().clone().requires_grad_()
    ref = dkd_reference(z2, z_t, y)
    (grad_ref,) = torch.autograd.grad(ref, z2)
    torch.testing.assert_close(mine.mean(), ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_mine, grad_ref, rtol=1e-4, atol=1e-8)
    assert loss.needs_labels


def test_hint_is_the_mean_squared_error_after_its_regressor() -> None:
    loss = Hint("hint")
    r, s = fixed(4, 8, 4, 4, seed=6), fixed(4, 16, 4, 4, seed=7)
    adapter = loss.make_adapter(tuple(r.shape[1:]), tuple(s.shape[1:]))
    assert adapter is not None and sum(p.numel() for p in adapter.parameters()) == 8 * 16 + 2 * 16
    mapped = adapter(r)
    torch.testing.assert_close(loss.per_sample(mapped, s).mean(), 100.0 * F.mse_loss(mapped, s))
    vectors = loss.make_adapter((12,), (20,))
    assert vectors is not None and vectors(fixed(4, 12, seed=8)).shape == (4, 20)


@pytest.mark.parametrize(
    ("loss", "receiver", "sender", "words"),
    [
        (Hint("hint"), (8, 4, 4), (16,), "same kind"),
        (Hint("hint"), (8, 4, 4), (16, 8, 8), "same resolution"),
        (Attention("attention"), (8, 6, 6), (16, 4, 4), "do not divide"),
        (Attention("attention"), (8,), (16, 4, 4), "tap convolutional layers"),
    ],
)
def test_shapes_that_cannot_be_compared_say_what_to_change(
    loss: object, receiver: tuple[int, ...], sender: tuple[int, ...], words: str
) -> None:
    problem = loss.check_shapes(receiver, sender)  # type: ignore[attr-defined]
    assert problem is not None and words in problem


def test_shapes_that_fit() -> None:
    assert Attention("attention").check_shapes((8, 8, 8), (64, 4, 4)) is None
    assert Hint("hint").check_shapes((8, 4, 4), (16, 4, 4)) is None
