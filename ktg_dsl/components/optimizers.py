"""Optimizers: torch.optim classes under their lower-case names, and LARS (``lars.py``; torch
has none).

Each wrapper repeats its class's user-facing arguments with types and bounds, so a spec is
checked without importing torch; ``tests/test_components.py`` keeps the names and defaults equal
to the installed torch's signatures (``tests/test_ssl_optim.py``: LARS's). ``foreach``/``fused``
are chosen by the engine: fused kernels where the class has them, else the multi-tensor
(foreach) path.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ..registry import OPTIMIZERS

LR = Annotated[float, Field(gt=0.0)]
NonNeg = Annotated[float, Field(ge=0.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
Eps = Annotated[float, Field(gt=0.0)]


def _build(
    cls_name: str, params: Any, foreach: bool | None, fused: bool | None, **kwargs: Any
) -> Any:
    """``torch.optim.<cls_name>(params, **kwargs)`` with the engine's implementation choice:
    fused kernels where the class has them, else foreach when asked."""
    import inspect

    import torch

    cls = getattr(torch.optim, cls_name)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    params = list(params)
    if fused and "fused" in inspect.signature(cls).parameters:
        try:
            return cls(params, fused=True, **kwargs)
        except (RuntimeError, ValueError):
            pass  # no fused kernel for this device or dtype in this torch: the foreach path
    if foreach is not None:
        kwargs["foreach"] = foreach
    return cls(params, **kwargs)


def _check_sgd(args: dict[str, Any]) -> None:
    if args["nesterov"] and (args["momentum"] <= 0 or args["dampening"] != 0):
        raise ValueError("nesterov needs momentum > 0 and dampening = 0")


@OPTIMIZERS.register(torch_name="SGD", check=_check_sgd)
def sgd(
    params: Any,
    lr: LR = 0.001,
    momentum: Beta = 0.0,  # 1 or more never forgets a gradient: it diverges
    dampening: NonNeg = 0.0,
    weight_decay: NonNeg = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """Stochastic gradient descent (torch.optim.SGD), with momentum and Nesterov."""
    if fused and momentum and dampening:
        fused = None  # see below: the fused kernel only for what it computes exactly
    optimizer = _build("SGD", **locals())
    if optimizer.defaults.get("fused") and momentum:
        import torch

        # torch's fused SGD fails when some parameters have a momentum buffer and others not
        # yet (an adapter whose edge opens late, a layer after the only tap read). A zero
        # buffer from the start is what the first step computes anyway: with dampening 0,
        # momentum * 0 + grad == grad, the buffer torch would have made.
        for group in optimizer.param_groups:
            for param in group["params"]:
                optimizer.state[param]["momentum_buffer"] = torch.zeros_like(param)
    return optimizer


@OPTIMIZERS.register(torch_name="Adam")
def adam(
    params: Any,
    lr: LR = 0.001,
    betas: tuple[Beta, Beta] = (0.9, 0.999),
    eps: Eps = 1e-8,
    weight_decay: NonNeg = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """Adam (torch.optim.Adam)."""
    return _build("Adam", **locals())


@OPTIMIZERS.register(torch_name="AdamW")
def adamw(
    params: Any,
    lr: LR = 0.001,
    betas: tuple[Beta, Beta] = (0.9, 0.999),
    eps: Eps = 1e-8,
    weight_decay: NonNeg = 0.01,
    amsgrad: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """Adam with decoupled weight decay (torch.optim.AdamW)."""
    return _build("AdamW", **locals())


@OPTIMIZERS.register(torch_name="RMSprop")
def rmsprop(
    params: Any,
    lr: LR = 0.01,
    alpha: NonNeg = 0.99,
    eps: Eps = 1e-8,
    weight_decay: NonNeg = 0.0,
    momentum: Beta = 0.0,
    centered: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """RMSprop (torch.optim.RMSprop)."""
    return _build("RMSprop", **locals())


@OPTIMIZERS.register(torch_name="Adagrad")
def adagrad(
    params: Any,
    lr: LR = 0.01,
    lr_decay: NonNeg = 0.0,
    weight_decay: NonNeg = 0.0,
    initial_accumulator_value: NonNeg = 0.0,
    eps: Eps = 1e-10,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """Adagrad (torch.optim.Adagrad)."""
    return _build("Adagrad", **locals())


@OPTIMIZERS.register(torch_name="NAdam")
def nadam(
    params: Any,
    lr: LR = 0.002,
    betas: tuple[Beta, Beta] = (0.9, 0.999),
    eps: Eps = 1e-8,
    weight_decay: NonNeg = 0.0,
    momentum_decay: NonNeg = 0.004,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """NAdam (torch.optim.NAdam)."""
    return _build("NAdam", **locals())


@OPTIMIZERS.register(torch_name="RAdam")
def radam(
    params: Any,
    lr: LR = 0.001,
    betas: tuple[Beta, Beta] = (0.9, 0.999),
    eps: Eps = 1e-8,
    weight_decay: NonNeg = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """RAdam (torch.optim.RAdam)."""
    return _build("RAdam", **locals())


@OPTIMIZERS.register()
def lars(
    params: Any,
    lr: LR = 1.0,
    momentum: Beta = 0.9,
    weight_decay: NonNeg = 1e-6,
    eta: Annotated[float, Field(gt=0.0, le=1.0)] = 0.001,
    exclude_bias_and_norm: bool = True,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """LARS (You et al. 2017), SimCLR's large-batch optimizer; defaults: the original's SimCLR
    example (lr 1.0, momentum 0.9, weight decay 1e-6, trust coefficient eta 0.001).
    ``exclude_bias_and_norm``: biases and norm layers (parameters of one dimension) get plain
    momentum SGD, no weight decay, as SimCLR does (the original's example excludes nothing:
    set it false to match). One loop over the parameters (no fused or foreach kernel)."""
    from .lars import LARS

    return LARS(
        list(params),
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        eta=eta,
        exclude_bias_and_norm=exclude_bias_and_norm,
    )
