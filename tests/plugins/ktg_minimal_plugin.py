"""A plugin written against the documented contracts only (``ktg_dsl.contracts``): a gate that
implements ``weight`` and nothing else, a loss that implements ``per_sample`` and nothing else,
and a model that is a plain ``torch.nn.Module``. Nothing here subclasses a built-in."""

from typing import Annotated, Any

from pydantic import Field

from ktg_dsl.contracts import EdgeLoss, Gate
from ktg_dsl.registry import GATES, LOSSES, MODELS


class Halfway(Gate):
    """Weight ``level`` from the middle of training on, 0 before."""

    def __init__(self, level: float) -> None:
        self.level = level

    def weight(self, t: int, T: int) -> float:
        return self.level if 2 * t >= T - 1 else 0.0


@GATES.register()
def halfway(level: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0) -> Gate:
    """Closed for the first half of training, then ``level``."""
    return Halfway(level)


class L1Logits(EdgeLoss):
    name = "l1_logits"

    def per_sample(self, logits: Any, target: Any) -> Any:
        return (logits.float() - target.float()).abs().mean(-1)


@LOSSES.register(target="logits")
def l1_logits() -> EdgeLoss:
    """Mean absolute difference of the logits (sender detached)."""
    return L1Logits()


@MODELS.register()
def tiny_mlp(num_classes: int, in_channels: int, hidden: int = 16) -> Any:
    """Pool to 4x4, then two linear layers."""
    from torch import nn

    return nn.Sequential(
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(in_channels * 16, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
