"""Gate weights over a run, as a picture needs them: per epoch (per-step gates read at the
epoch's first step), sampled when a run has more epochs than a picture can show."""

from __future__ import annotations

from ..contracts import Gate, spread
from ..graph import GraphEdge, gate_horizon
from ..spec.schema import Spec


def epoch_weight(gate: Gate | None, epoch: int, spec: Spec) -> float:
    """The gate's weight at an epoch; per-step gates are read at the epoch's first step, and
    the per-sample ``correct`` gate counts as 1 (its upper bound)."""
    if gate is None or gate.per_sample:
        return 1.0
    horizon = gate_horizon(spec)
    t = epoch * (horizon // spec.train.epochs)
    return gate.weight(t, horizon)


SAMPLED_EPOCHS = 512  # a picture needs no more; a run may have millions of epochs
MAX_CSV_EPOCHS = 100_000


def sampled_epochs(epochs: int, limit: int | None) -> list[int]:
    """Every epoch, or ``limit`` evenly spaced ones (first and last included)."""
    return list(range(epochs)) if limit is None else spread(epochs, limit)


def weights_over_epochs(
    spec: Spec, edges: list[GraphEdge], limit: int | None = None
) -> tuple[list[int], list[list[float]]]:
    """The epochs sampled, and one row per sampled epoch, one column per edge."""
    epochs = sampled_epochs(spec.train.epochs, limit)
    return epochs, [[epoch_weight(d.gate, e, spec) for d in edges] for e in epochs]
