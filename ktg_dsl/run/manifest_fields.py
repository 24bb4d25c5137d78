"""The fields of a run's ``last.pt`` manifest, checked before any of them is used: a file with
the right digest may still have been damaged or edited (``epoch: -5`` would train epochs -5..0
and drop the log's earlier rows; ``rng: []`` or ``best: 3`` would stop in Python's words). Each
field must have its type and range, or the resume is refused naming it, with nothing changed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, TypeGuard

import torch

from ..errors import KtgRuntimeError


class DamagedManifest(KtgRuntimeError):
    """A ``last.pt`` whose fields are not what ktg writes."""


def check_fields(path: Path, manifest: dict[str, Any], epochs: int, steps: int | None) -> None:
    """Refuse ``manifest`` (read from ``path``) unless every field ktg reads back has its
    type and range: the position within ``epochs`` epochs of ``steps`` batches, the node
    files, the metric sums, the best scores, the RNG states, the time and the mesh."""

    def damaged(what: str) -> DamagedManifest:
        return DamagedManifest(f"{path} is damaged: {what}; nothing was changed")

    epoch, step = manifest.get("epoch"), manifest.get("step")
    if not _whole(epoch) or not 0 <= epoch <= epochs:
        raise damaged(f"'epoch' is {_shown(epoch)}, not an epoch from 0 to {epochs}")
    top = steps if steps is not None else math.inf
    if not _whole(step) or not 0 <= step <= top:
        raise damaged(f"'step' is {_shown(step)}, not a batch from 0 to {top}")
    nodes = manifest.get("nodes", manifest.get("engine"))
    if not isinstance(nodes, dict) or not all(isinstance(k, str) for k in nodes):
        raise damaged(f"'nodes' is {_shown(nodes)}, not a table of node files")
    if "nodes" in manifest and not all(isinstance(v, str) for v in nodes.values()):
        raise damaged("'nodes' names something that is not a file name")
    problem = (
        _metrics(manifest.get("metrics"))
        or _best(manifest.get("best", {}))
        or _rng(manifest.get("rng"))
        or _mesh(manifest.get("mesh", {}))
    )
    if problem:
        raise damaged(problem)
    elapsed = manifest.get("elapsed", 0.0)
    if not _number(elapsed) or not math.isfinite(elapsed) or elapsed < 0:
        raise damaged(f"'elapsed' is {_shown(elapsed)}, not a time in seconds")


def _metrics(metrics: Any) -> str | None:
    if not isinstance(metrics, dict):
        return f"'metrics' is {_shown(metrics)}, not the epoch's metric sums"
    for key in ("loss_sum", "correct", "bad"):
        if not isinstance(metrics.get(key), torch.Tensor):
            return f"'metrics.{key}' is {_shown(metrics.get(key))}, not a tensor"
    if not _whole(metrics.get("seen")) or metrics["seen"] < 0:
        return f"'metrics.seen' is {_shown(metrics.get('seen'))}, not a count of samples"
    return None


def _best(best: Any) -> str | None:
    if not isinstance(best, dict):
        return f"'best' is {_shown(best)}, not a table of each node's best score"
    for node, record in best.items():
        if not isinstance(node, str) or not isinstance(record, dict):
            return f"'best' holds {_shown(node)}: {_shown(record)}, not a node's best score"
        score, epoch = record.get("val_top1"), record.get("epoch")
        if not _number(score) or not _whole(epoch) or epoch < 0:
            return f"'best.{node}' is {_shown(record)}, not a val_top1 and its epoch"
    return None


def _rng(rng: Any) -> str | None:
    states = rng if isinstance(rng, list) else [rng]
    if not states:
        return "'rng' is an empty list: no process's random state"
    for state in states:
        if not isinstance(state, dict):
            return f"'rng' holds {_shown(state)}, not a random state"
        torch_state, python = state.get("torch"), state.get("python")
        if not isinstance(torch_state, torch.Tensor) or torch_state.dtype != torch.uint8:
            return "'rng.torch' is not torch's random state (a byte tensor)"
        if not isinstance(python, list | tuple) or len(python) != 3:
            return "'rng.python' is not Python's random state (version, state, gauss)"
        if not isinstance(python[1], list | tuple) or not all(_whole(x) for x in python[1]):
            return "'rng.python' holds a state that is not a list of whole numbers"
    return None


def _mesh(mesh: Any) -> str | None:
    if not isinstance(mesh, dict):
        return f"'mesh' is {_shown(mesh)}, not the mesh the run was written on"
    for key in ("world", "groups", "replicas"):
        value = mesh.get(key, 1)
        if not _whole(value) or value < 1:
            return f"'mesh.{key}' is {_shown(value)}, not a count of processes"
    return None


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, torch.Tensor) else f"a tensor {tuple(value.shape)}"
    return text if len(text) <= 40 else text[:37] + "..."
