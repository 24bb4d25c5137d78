"""Starting a node from weights that fit only in part: a pretrained backbone under a new head
(``checkpoint_fit: partial``), or layers named to start afresh (``checkpoint_skip``).

The tensors whose names and shapes fit are loaded; every other tensor of the model keeps the
initialisation its builder gave it, and what was loaded and what was not is printed (to
stderr), so that a misspelt prefix cannot silently leave a model untrained.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from ..engine.program import RuntimeNode
from ..errors import KtgRuntimeError

SHOWN = 6  # keys named in the report; the rest are counted


def fitting_part(node: RuntimeNode, state: dict[str, Any], path: Path) -> dict[str, Any]:
    """``state`` as it should load into ``node``: unchanged for a strict fit without skipped
    keys; else the model's own state with the fitting tensors of ``state`` put in."""
    cfg = node.config
    skip = tuple(getattr(cfg, "checkpoint_skip", None) or ())
    partial = getattr(cfg, "checkpoint_fit", "strict") == "partial"
    if not skip and not partial:
        return state
    own = node.model.state_dict()
    skipped = sorted(k for k in state if k.startswith(skip)) if skip else []
    offered = {k: v for k, v in state.items() if not (skip and k.startswith(skip))}
    fits = {k: v for k, v in offered.items() if k in own and _same_shape(v, own[k])}
    if not partial:  # only the skipped keys may differ: the rest must fit as a strict load
        wanted = {k for k in own if not k.startswith(skip)}
        if set(fits) != wanted or len(offered) != len(fits):
            return offered  # the strict check names the missing and unexpected keys
    if not fits:
        raise KtgRuntimeError(
            f"no tensor of checkpoint {path} fits node '{node.name}' "
            f"('{getattr(getattr(cfg, 'model', None), 'type', '?')}') by name and shape; "
            "checkpoint_prefix renames the file's keys"
        )
    _report(node.name, path, own, offered, fits, skipped)
    return {**own, **fits}


def _same_shape(a: Any, b: Any) -> bool:
    return isinstance(a, torch.Tensor) and tuple(a.shape) == tuple(b.shape)


def _report(
    name: str,
    path: Path,
    own: dict[str, Any],
    offered: dict[str, Any],
    fits: dict[str, Any],
    skipped: list[str],
) -> None:
    fresh = [k for k in own if k not in fits]
    unused = [k for k in offered if k not in fits and k not in own]
    shapes = [k for k in offered if k in own and k not in fits]
    lines = [f"ktg: node '{name}': loaded {len(fits)} of its {len(own)} tensors from {path}"]
    if fresh:
        lines.append(f"  kept its own initialisation for {len(fresh)}: {_short(fresh)}")
    for k in shapes[:SHOWN]:
        lines.append(
            f"  {k}: the file's {tuple(offered[k].shape)} does not fit the model's "
            f"{tuple(own[k].shape)}"
        )
    if skipped:
        lines.append(f"  not loaded (checkpoint_skip): {len(skipped)}: {_short(skipped)}")
    if unused:
        lines.append(f"  the file's keys the model lacks, unused: {len(unused)}: {_short(unused)}")
    print("\n".join(lines), file=sys.stderr)


def _short(keys: list[str]) -> str:
    more = len(keys) - SHOWN
    return ", ".join(keys[:SHOWN]) + (f" and {more} more" if more > 0 else "")
