"""Taps: intermediate layers a node exposes to feature edges, read with forward hooks only
while an open edge needs them (no hook is registered otherwise, so an unused tap costs
nothing). A tap names a module path of the model (``layer3``, ``layer3.4.conv2``)."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn


class TapError(LookupError):
    """A tap that names no module of the model, or whose module gives no tensor."""


def module_at(model: nn.Module, path: str) -> nn.Module:
    """The module at a dotted path; a TapError naming the closest module path otherwise."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        close = difflib.get_close_matches(path, names, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{close[0]}'?"
        else:
            tops = [n for n in names if "." not in n]
            hint = (
                "its top-level modules: "
                + ", ".join(tops[:12])
                + (", ..." if len(tops) > 12 else "")
            )
        raise TapError(f"'{path}' is not a module of the model ({hint})") from None


def _tensor(output: Any, path: str) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple | list) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TapError(f"module '{path}' gives {type(output).__name__}, not a tensor")


@contextlib.contextmanager
def capture(model: nn.Module, taps: dict[str, str]) -> Iterator[dict[str, Tensor]]:
    """Inside the block, each forward of ``model`` stores the output of every tap's module in
    the yielded dictionary (tap name -> tensor, with its autograd history)."""
    store: dict[str, Tensor] = {}
    handles = []
    try:
        for name, path in taps.items():

            def hook(_m: nn.Module, _i: Any, out: Any, name: str = name, path: str = path) -> None:
                store[name] = _tensor(out, path)

            handles.append(module_at(model, path).register_forward_hook(hook))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def tap_shapes(
    model: nn.Module, taps: dict[str, str], input_shape: tuple[int, ...]
) -> dict[str, tuple[int, ...]]:
    """The shape of every tap (without the batch dimension) for an input of ``input_shape``,
    found by one forward of two samples. Build the model on the meta device to spend no
    memory or time on weights."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with capture(model, taps) as store, torch.no_grad():
        model(torch.zeros(2, *input_shape, device=device))
    missing = [name for name in taps if name not in store]
    if missing:
        raise TapError(f"module '{taps[missing[0]]}' never runs in the model's forward")
    return {name: tuple(store[name].shape[1:]) for name in taps}
