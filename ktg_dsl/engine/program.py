"""What the compiler hands the engine: runtime nodes (model, optimizer, scheduler, scaler,
device) in spec order and the computed edges. Plain data and gate arithmetic; no spec types,
no registry, no files."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ..errors import KtgRuntimeError
from .contracts import EdgeLoss, Gate

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class Target:
    """Where and how a program runs, every ``auto`` already resolved (``run.env`` does that
    on the host)."""

    device: torch.device
    precision: Precision
    channels_last: bool
    compile: bool = False
    node_devices: dict[str, torch.device] = field(default_factory=dict)  # nodes.<name>.device
    remote: frozenset[str] = frozenset()  # trained elsewhere (another rank): built on meta


@dataclass(frozen=True)
class KnnSettings:
    """A self-supervised program's evaluation: kNN on each node's features (its ``features``
    module's output), the training part as memory bank; optionally a linear probe."""

    k: int = 20
    weighted: bool = False
    temperature: float = 0.07
    linear_probe: bool = False


@dataclass
class RuntimeNode:
    """One model and everything that trains it. ``config`` is the node's section of the spec,
    kept for callers (checkpoints name the model with it); the engine never reads it."""

    name: str
    index: int
    model: nn.Module
    device: torch.device
    frozen: bool
    num_classes: int
    config: Any = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None  # torch.optim.lr_scheduler.LRScheduler
    scheduler_interval: str = "epoch"
    scaler: torch.amp.GradScaler | None = None
    taps: dict[str, str] = field(default_factory=dict)  # tap name -> module path
    tap_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # without the batch
    features: str | None = None  # self-supervised: the module whose output kNN reads
    # modules owned by the edges into this node (a hint's regressor): trained by its
    # optimizer, saved with it
    adapters: nn.ModuleDict = field(default_factory=nn.ModuleDict)

    def parameters(self) -> list[nn.Parameter]:
        """What the node's optimizer steps: its model's parameters and its edges' adapters'."""
        return [*self.model.parameters(), *self.adapters.parameters()]

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"]) if self.optimizer else 0.0


@dataclass(frozen=True)
class EdgeSlot:
    """A computed (not cut-off) edge. ``sender == receiver`` is the labels edge."""

    receiver: int
    sender: int
    gate: Gate
    loss: EdgeLoss
    scale: float = 1.0  # 1/peer count under peer_reduction: mean, else 1
    receiver_tap: str | None = None  # a feature edge compares taps, not logits
    sender_tap: str | None = None
    adapter: nn.Module | None = None  # applied to the receiver's output first (a hint)
    views: bool = False  # a views loss (self-supervised): its self edge reads no labels

    @property
    def is_labels(self) -> bool:
        return self.sender == self.receiver

    @property
    def on_features(self) -> bool:
        return self.receiver_tap is not None or self.sender_tap is not None


@dataclass
class Program:
    """A compiled graph. ``spec`` is the spec it was compiled from, for callers; the engine
    reads only the other fields."""

    nodes: OrderedDict[str, RuntimeNode]
    edges: list[EdgeSlot]
    num_classes: int
    input_shape: tuple[int, int, int]
    device: torch.device
    precision: Precision
    channels_last: bool
    epochs: int
    gate_unit: str = "epoch"  # or "step"
    grad_clip: float | None = None
    steps_per_epoch: int | None = None
    spec: Any = None
    knn: KnnSettings | None = None  # set: a self-supervised program (engine/ssl.py)

    @property
    def names(self) -> list[str]:
        return list(self.nodes)

    def time(self, epoch: int, step: int | None = None) -> tuple[int, int]:
        """(t, T) of the gates at this epoch (and step, when gates run per step)."""
        if self.gate_unit == "epoch":
            return epoch, self.epochs
        if self.steps_per_epoch is None:
            raise KtgRuntimeError("gates run per step: set program.steps_per_epoch first")
        return epoch * self.steps_per_epoch + (step or 0), self.epochs * self.steps_per_epoch

    def edge_weights(self, epoch: int, step: int | None = None) -> list[float]:
        """The weight of each edge in ``self.edges`` at this time (scale included)."""
        t, T = self.time(epoch, step)
        return [e.gate.weight(t, T) * e.scale for e in self.edges]

    def gate_weights(self, epoch: int, step: int | None = None) -> list[list[float]]:
        """The N x N matrix of edge weights (rows receivers, columns senders, diagonal the
        labels edge); 0 for cut-off edges. A per-sample gate (``correct``) shows 1: its mask
        is applied per sample in the step."""
        n = len(self.nodes)
        out = [[0.0] * n for _ in range(n)]
        for e, w in zip(self.edges, self.edge_weights(epoch, step), strict=True):
            if not e.on_features:
                out[e.receiver][e.sender] = w
        return out

    def incoming_weights(self, epoch: int, step: int | None = None) -> list[dict[str, float]]:
        """Per node, the weight of each of its incoming edges at this time, by sender:
        ``labels``, a node name, or ``node.tap->tap`` for a feature edge."""
        out: list[dict[str, float]] = [{} for _ in self.nodes]
        for e, w in zip(self.edges, self.edge_weights(epoch, step), strict=True):
            out[e.receiver][self.edge_key(e)] = w
        return out

    def edge_key(self, e: EdgeSlot) -> str:
        """How an edge is named among its receiver's incoming edges (metrics.jsonl's
        ``gates`` and ``edges``, TensorBoard tags): ``labels``, the sender's name, or
        ``sender.tap->tap`` for a feature edge."""
        sender = "labels" if e.is_labels else self.names[e.sender]
        return f"{sender}.{e.sender_tap}->{e.receiver_tap}" if e.on_features else sender

    def by_receiver(
        self, per_edge: list[dict[str, float] | None]
    ) -> list[dict[str, dict[str, float]]]:
        """Per node, the values of its incoming edges (one per edge of ``self.edges``, None
        where an edge has none: e.g. its mean ``loss``, ``weight`` and ``term`` this epoch, or
        closed all epoch) by ``edge_key``."""
        out: list[dict[str, dict[str, float]]] = [{} for _ in self.nodes]
        for e, values in zip(self.edges, per_edge, strict=True):
            if values is not None:
                out[e.receiver][self.edge_key(e)] = values
        return out

    def edge_matrix(self) -> list[list[EdgeSlot | None]]:
        """Receiver x sender table of the computed logits edges (None where cut off)."""
        n = len(self.nodes)
        out: list[list[EdgeSlot | None]] = [[None] * n for _ in range(n)]
        for e in self.edges:
            if not e.on_features:
                out[e.receiver][e.sender] = e
        return out

    def trainable(self) -> list[RuntimeNode]:
        return [n for n in self.nodes.values() if not n.frozen]
