"""What the end of an epoch records: one row per node (train and evaluation metrics, lr, the
gates in force) and each node's best checkpoint."""

from __future__ import annotations

from typing import Any

from ..engine.mesh import Coordinator
from ..engine.program import Program
from . import checkpoint as ckpt
from .rundir import RunDir

Rows = dict[str, dict[str, Any]]


def epoch_rows(
    program: Program,
    epoch: int,
    stats: dict[str, dict[str, Any]],
    evaluated: dict[str, dict[str, float]],
) -> Rows:
    """The epoch's row of every node, as metrics.jsonl stores it (without timings). A trained
    node's ``edges`` holds, per incoming edge open this epoch (keyed as ``gates``), its mean
    ``loss`` before the gate, its mean gate ``weight`` and its weighted ``term``: the terms add
    up to ``train_loss`` (docs/results.md)."""
    weights = program.incoming_weights(epoch)
    rows: Rows = {}
    for node in program.nodes.values():
        rows[node.name] = {
            "train_loss": stats.get(node.name, {}).get("train_loss"),
            "train_top1": stats.get(node.name, {}).get("train_top1"),
            "val_top1": evaluated.get(node.name, {}).get("top1"),
            "val_loss": evaluated.get(node.name, {}).get("loss"),
            "lr": stats.get(node.name, {}).get("lr"),
            "frozen": node.frozen,
            "gates": {k: round(w, 6) for k, w in weights[node.index].items() if w > 0},
        }
        for extra in ("knn_top1", "probe_top1"):  # a self-supervised graph's evaluation
            if extra in evaluated.get(node.name, {}):
                rows[node.name][extra] = evaluated[node.name][extra]
        edges = stats.get(node.name, {}).get("edges")
        if edges:
            rows[node.name]["edges"] = edges
    return rows


def save_best(
    program: Program,
    run: RunDir,
    epoch: int,
    rows: Rows,
    best: dict[str, dict[str, Any]],
    coordinator: Coordinator,
    data: dict[str, Any] | None = None,
) -> None:
    """Save best/<node>.pt for every trained node whose evaluation beat its best so far (the
    node's owner writes it): the first epoch that reaches a node's best value is the one kept
    and reported. ``data``: what the files record of the data (``checkpoint.data_facts``)."""
    for node in program.nodes.values():
        top1 = rows[node.name]["val_top1"]
        before = best.get(node.name)
        if top1 is None or node.frozen or (before is not None and top1 <= before["val_top1"]):
            continue
        best[node.name] = {"val_top1": top1, "epoch": epoch}
        if not coordinator.owns(node.index):
            continue
        ckpt.save(
            ckpt.node_checkpoint(node, program.input_shape[0], epoch, top1, data),
            run.best(node.name),
        )


def stamp(rows: Rows, tick: float, elapsed: float) -> Rows:
    """The rows with the epoch's time (since ``tick``) and the run's training time so far."""
    import time

    for row in rows.values():
        row["epoch_time"] = round(time.perf_counter() - tick, 3)
        row["elapsed"] = round(elapsed, 3)
    return rows
