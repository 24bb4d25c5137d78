"""LARS against a hand-written float64 step of its update rule, and warmup_cosine's learning
rates against the closed form, at chosen steps."""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch
from torch import Tensor

from ktg_dsl.components.lars import LARS
from ktg_dsl.components.optimizers import lars as lars_wrapper
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.registry import OPTIMIZERS, SCHEDULERS


def params() -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (4,), (2, 3, 2, 2)]  # a weight, a bias, a convolution
    return [torch.nn.Parameter(torch.randn(*s, generator=g, dtype=torch.float64)) for s in shapes]


def grads(step: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(*p.shape, generator=g, dtype=torch.float64) for p in params()]


def reference(steps: int, lr: float, m: float, wd: float, eta: float, exclude: bool) -> list:
    """The update written out: d = g + wd w, scaled by eta ||w|| / ||d|| (1 at a zero norm);
    excluded (1-d) parameters: d = g; mu = m mu + d; w -= lr mu."""
    ws = [p.detach().clone() for p in params()]
    mus = [torch.zeros_like(w) for w in ws]
    for step in range(steps):
        for i, (w, g) in enumerate(zip(ws, grads(step), strict=True)):
            if exclude and w.dim() <= 1:
                d = g
            else:
                d = g + wd * w
                w_norm = math.sqrt(float((w * w).sum()))
                d_norm = math.sqrt(float((d * d).sum()))
                d = d * (eta * w_norm / d_norm if w_norm > 0 and d_norm > 0 else 1.0)
            mus[i] = m * mus[i] + d
            ws[i] = w - lr * mus[i]
    return ws


def run(opt: torch.optim.Optimizer, ps: list[torch.nn.Parameter], steps: range) -> None:
    for step in steps:
        for p, g in zip(ps, grads(step), strict=True):
            p.grad = g.clone()
        opt.step()


@pytest.mark.parametrize("exclude", [True, False])
def test_lars_is_its_update_rule(exclude: bool) -> None:
    ps = params()
    opt = LARS(ps, lr=0.7, momentum=0.9, weight_decay=0.05, eta=0.02, exclude_bias_and_norm=exclude)
    run(opt, ps, range(4))
    for mine, ref in zip(ps, reference(4, 0.7, 0.9, 0.05, 0.02, exclude), strict=True):
        torch.testing.assert_close(mine.detach(), ref, rtol=1e-12, atol=1e-14)
    moved = (ps[1] - params()[1]).abs().max()
    # excluded: the bias moves by plain momentum SGD (lr x ~grad); adapted: by ~eta ||w||
    assert (moved > 0.5) == exclude


def test_a_zero_parameter_moves_by_its_plain_gradient() -> None:
    w = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    opt = LARS([w], lr=0.5, momentum=0.0, weight_decay=0.0)
    w.grad = torch.ones(3, 2, dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3, 2), -0.5, dtype=torch.float64))


def test_lars_resumes_from_its_state_dict() -> None:
    ps = params()
    opt = LARS(ps, lr=0.3)
    run(opt, ps, range(2))
    again = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    resumed = LARS(again, lr=0.3)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))  # as a checkpoint holds it
    run(opt, ps, range(2, 4))
    run(resumed, again, range(2, 4))
    for a, b in zip(ps, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_lars_wrapper_repeats_the_class_arguments() -> None:
    cls = inspect.signature(LARS).parameters
    comp = OPTIMIZERS.get("lars")
    for arg, field in comp.params.model_fields.items():
        assert field.default == cls[arg].default, arg
    assert set(cls) - {"params"} == set(comp.params.model_fields)
    assert "foreach" in inspect.signature(lars_wrapper).parameters  # the engine passes them
    built = comp.build({"lr": 2.0}, params=params(), foreach=True, fused=True)
    assert isinstance(built, LARS) and built.defaults["lr"] == 2.0
    with pytest.raises(ValueError):
        comp.check({"eta": 0})


def lrs(opt: torch.optim.Optimizer, sched: object, steps: int) -> list[list[float]]:
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()  # type: ignore[attr-defined]
    return seen


def closed_form(i: int, base: float, floor: float, warm: int, total: int) -> float:
    if i < warm:
        return base * (i + 1) / warm
    p = min(1.0, (i - warm) / (total - warm))
    return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * p))


def test_warmup_cosine_follows_the_closed_form() -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b], "lr": 0.1}], lr=0.1)
    comp = SCHEDULERS.get("warmup_cosine")
    assert comp.meta.interval == "step"
    sched = comp.build({"warmup_epochs": 2, "eta_min": 0.01}, optimizer=opt, epochs=20,
                       steps_per_epoch=5)  # fmt: skip
    seen = lrs(opt, sched, 102)  # warm-up: 10 steps; 100 in all; past the end: the floor
    for i in (0, 4, 9, 10, 11, 37, 55, 99, 100, 101):
        for group, base in enumerate((0.5, 0.1)):
            want = closed_form(i, base, 0.01, 10, 100)
            assert seen[i][group] == pytest.approx(want, rel=1e-12, abs=1e-15), (i, group)
    assert seen[9][0] == pytest.approx(0.5) and seen[100][1] == pytest.approx(0.01)


def test_warmup_cosine_defaults_and_min_factor() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    sched = SCHEDULERS.get("warmup_cosine").build(
        {"min_factor": 0.1}, optimizer=opt, epochs=40, steps_per_epoch=3
    )
    seen = [lr for (lr,) in lrs(opt, sched, 120)]
    for i in (0, 29, 30, 75, 119):  # the default warm-up: 10 epochs = 30 steps
        assert seen[i] == pytest.approx(closed_form(i, 1.0, 0.1, 30, 120), rel=1e-12)


def test_warmup_cosine_says_when_the_warm_up_is_too_long() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    with pytest.raises(KtgRuntimeError, match="warms up for 10 epochs, but training runs 5"):
        SCHEDULERS.get("warmup_cosine").build({}, optimizer=opt, epochs=5, steps_per_epoch=3)
    hook = SCHEDULERS.get("warmup_cosine").meta.check
    assert hook is not None
    with pytest.raises(ValueError, match="not both"):
        hook({"eta_min": 0.1, "min_factor": 0.5})
