"""Learning-rate schedulers. Each steps once per epoch unless registered with
``interval="step"``. ktg passes the optimizer, the number of epochs and the steps per epoch."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field

from ..errors import KtgRuntimeError
from ..registry import SCHEDULERS

NonNeg = Annotated[float, Field(ge=0.0)]
Factor = Annotated[float, Field(gt=0.0, le=1.0)]
PosInt = Annotated[int, Field(ge=1)]


@SCHEDULERS.register(interval="epoch")
def constant(optimizer: Any, epochs: int, steps_per_epoch: int) -> Any:
    """Keep the optimizer's learning rate."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda _: 1.0)


@SCHEDULERS.register(interval="epoch")
def cosine(optimizer: Any, epochs: int, steps_per_epoch: int, eta_min: NonNeg = 0.0) -> Any:
    """Cosine annealing from the initial lr to ``eta_min`` over all epochs (the original's)."""
    from torch.optim.lr_scheduler import CosineAnnealingLR

    return CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min)


@SCHEDULERS.register(interval="epoch")
def step(
    optimizer: Any, epochs: int, steps_per_epoch: int, step_size: PosInt = 30, gamma: Factor = 0.1
) -> Any:
    """Multiply the lr by ``gamma`` every ``step_size`` epochs."""
    from torch.optim.lr_scheduler import StepLR

    return StepLR(optimizer, step_size=step_size, gamma=gamma)


@SCHEDULERS.register(interval="epoch")
def multistep(
    optimizer: Any,
    epochs: int,
    steps_per_epoch: int,
    milestones: list[PosInt] = [100, 150],  # noqa: B006 - read-only default
    gamma: Factor = 0.1,
) -> Any:
    """Multiply the lr by ``gamma`` at each epoch in ``milestones``."""
    from torch.optim.lr_scheduler import MultiStepLR

    return MultiStepLR(optimizer, milestones=sorted(milestones), gamma=gamma)


@SCHEDULERS.register(interval="epoch")
def exponential(optimizer: Any, epochs: int, steps_per_epoch: int, gamma: Factor = 0.95) -> Any:
    """Multiply the lr by ``gamma`` every epoch."""
    from torch.optim.lr_scheduler import ExponentialLR

    return ExponentialLR(optimizer, gamma=gamma)


class _WarmupCosine:
    """Linear warm-up for ``warmup`` steps, then cosine to ``floor`` of the base lr.

    A class (not a lambda) so that the scheduler's state_dict stays picklable."""

    def __init__(self, warmup: int, total: int, floor: float) -> None:
        self.warmup, self.total, self.floor = warmup, total, floor

    def __call__(self, i: int) -> float:
        if i < self.warmup:
            return (i + 1) / self.warmup
        p = (i - self.warmup) / max(1, self.total - self.warmup)
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))


def _one_floor(args: dict[str, Any]) -> None:
    """warmup_cosine's check: one way to say where the cosine ends."""
    if args.get("eta_min") and args.get("min_factor"):
        raise ValueError(
            "give eta_min (a learning rate) or min_factor (a fraction of the optimizer's lr) "
            "for where the cosine ends, not both"
        )


@SCHEDULERS.register(interval="step", check=_one_floor)
def warmup_cosine(
    optimizer: Any,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: Annotated[float, Field(ge=0.0)] = 10.0,
    eta_min: NonNeg = 0.0,
    min_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0,
) -> Any:
    """Linear warm-up over ``warmup_epochs`` (lr x step / warm-up steps, from the first step),
    then cosine decay to ``eta_min`` (or ``min_factor`` x lr), updated every step. Defaults:
    the original's SimCLR (10 warm-up epochs, then cosine to 0)."""
    from torch.optim.lr_scheduler import LambdaLR

    if warmup_epochs and warmup_epochs >= epochs:
        raise KtgRuntimeError(
            f"scheduler warmup_cosine warms up for {warmup_epochs:g} epochs, but training runs "
            f"{epochs}: the cosine would never start; set the scheduler's warmup_epochs below "
            f"train.epochs (e.g. {max(0.0, epochs / 10):g}), or 0 for no warm-up"
        )
    total = epochs * steps_per_epoch
    warm = round(warmup_epochs * steps_per_epoch)
    floors = [
        eta_min / group.get("initial_lr", group["lr"]) if eta_min else min_factor
        for group in optimizer.param_groups
    ]
    return LambdaLR(optimizer, [_WarmupCosine(warm, total, floor) for floor in floors])


@SCHEDULERS.register(interval="step")
def onecycle(
    optimizer: Any,
    epochs: int,
    steps_per_epoch: int,
    max_lr: Annotated[float, Field(gt=0.0)] = 0.1,
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3,
    div_factor: Annotated[float, Field(gt=0.0)] = 25.0,
    final_div_factor: Annotated[float, Field(gt=0.0)] = 1e4,
) -> Any:
    """One-cycle policy (torch.optim.lr_scheduler.OneCycleLR), updated every step."""
    from torch.optim.lr_scheduler import OneCycleLR

    return OneCycleLR(
        optimizer,
        max_lr=max_lr,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
