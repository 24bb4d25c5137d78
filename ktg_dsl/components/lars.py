"""LARS: layer-wise adaptive rate scaling (You et al. 2017), SimCLR's optimizer for large
batches, as the original KnowledgeTransferGraph repository uses it (``ktg/utils/optimizer.py``,
after Barlow Twins' ``LARS``).

Why not a library's: torch has none; ``timm.optim.Lars`` is well kept but brings timm with
huggingface_hub and safetensors for one 40-line class, and excludes biases and norms only
through the caller's parameter groups. The update, per parameter ``w`` with gradient ``g``:

    d = g + weight_decay * w
    d = d * eta * ||w|| / ||d||      (1 where ||w|| or ||d|| is 0)
    mu = momentum * mu + d
    w = w - lr * mu

The trust ratio's denominator is ``||g + wd w||``, the original's (and Barlow Twins'); the
LARS paper writes ``||g|| + wd ||w||``, which differs by under ``wd ||w|| / ||g||`` (about 1e-6
relative at SimCLR's wd = 1e-6). With ``exclude_bias_and_norm`` the parameters of one
dimension or less (biases, BatchNorm's weights and biases) get neither weight decay nor the
trust ratio: plain momentum SGD, as SimCLR does. The original's SimCLR example turns both
exclusions off (``weight_decay_filter=False, lars_adaptation_filter=False``).

This module imports torch: the optimizer registry imports it only when building.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor


class LARS(torch.optim.Optimizer):
    """LARS with momentum; see the module's docstring for the update."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        eta: float = 0.001,
        exclude_bias_and_norm: bool = True,
    ) -> None:
        if lr <= 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(
                f"LARS needs lr > 0, momentum >= 0, weight_decay >= 0 and eta > 0; got lr={lr}, "
                f"momentum={momentum}, weight_decay={weight_decay}, eta={eta}"
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eta": eta,
            "exclude_bias_and_norm": exclude_bias_and_norm,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = _direction(p, p.grad, group)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                mu = state["momentum_buffer"]
                mu.mul_(group["momentum"]).add_(d)
                p.add_(mu, alpha=-group["lr"])
        return loss


def _direction(p: Tensor, grad: Tensor, group: dict[str, Any]) -> Tensor:
    """The weight-decayed, trust-scaled gradient of one parameter (the bare gradient for an
    excluded bias or norm parameter)."""
    if group["exclude_bias_and_norm"] and p.ndim <= 1:
        return grad
    d = grad.add(p, alpha=group["weight_decay"])
    w_norm, d_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
    one = torch.ones_like(w_norm)
    # no host sync: the ratio stays a tensor, 1 where either norm is 0 (a fresh zero bias,
    # a layer with no gradient this step)
    ratio = torch.where(
        (w_norm > 0) & (d_norm > 0), group["eta"] * w_norm / d_norm.clamp_min(1e-38), one
    )
    return d.mul_(ratio)
