"""Optimizers: torch.optim classes under their lower-case names.

Each wrapper repeats its torch class's user-facing arguments with types and bounds, so a spec is
checked without importing torch; ``tests/test_components.py`` keeps the names and defaults equal
to the installed torch's signatures. ``foreach``/``fused`` are chosen by the engine.
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
    import torch

    cls = getattr(torch.optim, cls_name)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    if fused:
        kwargs["fused"] = True
    elif foreach is not None:
        kwargs["foreach"] = foreach
    return cls(params, **kwargs)


@OPTIMIZERS.register(torch_name="SGD", fusable=True)
def sgd(
    params: Any,
    lr: LR = 0.001,
    momentum: NonNeg = 0.0,
    dampening: NonNeg = 0.0,
    weight_decay: NonNeg = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """Stochastic gradient descent (torch.optim.SGD), with momentum and Nesterov."""
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov needs momentum > 0 and dampening = 0")
    return _build(
        "SGD",
        params,
        foreach,
        fused,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
        maximize=maximize,
    )


@OPTIMIZERS.register(torch_name="Adam", fusable=True)
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
    return _build(
        "Adam",
        params,
        foreach,
        fused,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
    )


@OPTIMIZERS.register(torch_name="AdamW", fusable=True)
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
    return _build(
        "AdamW",
        params,
        foreach,
        fused,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
    )


@OPTIMIZERS.register(torch_name="RMSprop")
def rmsprop(
    params: Any,
    lr: LR = 0.01,
    alpha: NonNeg = 0.99,
    eps: Eps = 1e-8,
    weight_decay: NonNeg = 0.0,
    momentum: NonNeg = 0.0,
    centered: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Any:
    """RMSprop (torch.optim.RMSprop)."""
    return _build(
        "RMSprop",
        params,
        foreach,
        None,
        lr=lr,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
        centered=centered,
        maximize=maximize,
    )


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
    return _build(
        "Adagrad",
        params,
        foreach,
        None,
        lr=lr,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
        maximize=maximize,
    )


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
    return _build(
        "NAdam",
        params,
        foreach,
        None,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        momentum_decay=momentum_decay,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


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
    return _build(
        "RAdam",
        params,
        foreach,
        None,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )
