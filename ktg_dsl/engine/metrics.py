"""Training metrics of the epoch so far, kept on the device: per-node loss sums, correct
counts and a broken-loss flag. A step adds to them without a host sync; they are read once
per epoch (and when a progress display asks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import KtgRuntimeError


class NonFiniteLossError(KtgRuntimeError):
    """A node's loss became NaN or infinite."""

    def __init__(self, nodes: list[str], epoch: int, epochs: int, precision: str) -> None:
        self.nodes = nodes
        self.epoch = epoch  # 0-based, as in metrics.jsonl
        quoted = [f"'{n}'" for n in nodes] or ["of a node"]
        names = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
        subject = f"node {names}" if len(nodes) == 1 else f"nodes {names}"
        if not nodes:  # another process's node (it names it)
            subject = "a node"
        fixes = "lower the learning rate or add train.grad_clip"
        if precision != "fp32":
            fixes += ", or train at precision: fp32"
        super().__init__(
            f"the loss of {subject} became NaN or infinite in epoch {epoch + 1} of {epochs}; "
            f"{fixes}"
        )


EDGE_SUMS = ("loss", "term", "weight", "seen")  # the rows of EpochMeter.edges


class EpochMeter:
    """Sums over the samples seen this epoch, one slot per node (in program order), and per
    edge (in ``program.edges`` order) the rows of ``EDGE_SUMS``: its loss before the weight
    and its weighted term, each times the batch size, its gate weight times the batch size, and
    the samples seen while it was open."""

    def __init__(self, n_nodes: int, device: torch.device, n_edges: int = 0) -> None:
        self.n, self.n_edges, self.device = n_nodes, n_edges, device
        self.reset()

    def reset(self) -> None:
        self.loss_sum = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        self.correct = torch.zeros(self.n, dtype=torch.long, device=self.device)
        self.bad = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        self.edges = torch.zeros(
            len(EDGE_SUMS), self.n_edges, dtype=torch.float64, device=self.device
        )
        self.seen = 0

    def add(self, rows: Tensor, logits: Tensor, y: Tensor, losses: Tensor) -> None:
        """One batch: ``losses`` per node, ``logits`` stacked for the nodes in ``rows``."""
        with torch.no_grad():
            b = y.shape[0]
            self.loss_sum += losses.detach().double() * b
            self.bad |= ~torch.isfinite(losses.detach())
            self.correct.index_add_(0, rows, (logits.argmax(-1) == y).sum(-1))
            self.seen += b

    def add_edges(self, index: Tensor, per_edge: Tensor, weights: Tensor, b: int) -> None:
        """One batch's open edges (``index`` into ``program.edges``): each one's loss and gate
        weight, on the device (no host sync)."""
        if not self.n_edges or not index.numel():
            return
        with torch.no_grad():
            loss, w = per_edge.detach().double(), weights.detach().double()
            sums = torch.stack([loss, loss * w, w, torch.ones_like(w)]) * b
            self.edges.index_add_(1, index, sums)

    def has_nonfinite(self) -> bool:
        return bool(self.bad.any())

    def broken(self) -> list[int]:
        """Indices of the nodes whose loss broke (one host sync)."""
        return [i for i, b in enumerate(self.bad.cpu().tolist()) if b]

    def state(self) -> dict[str, Any]:
        return {
            "loss_sum": self.loss_sum.cpu(),
            "correct": self.correct.cpu(),
            "bad": self.bad.cpu(),
            "edges": self.edges.cpu(),
            "seen": self.seen,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.loss_sum = state["loss_sum"].to(self.device)
        self.correct = state["correct"].to(self.device)
        self.bad = state["bad"].to(self.device)
        edges = state.get("edges")  # absent from a checkpoint of an older ktg
        if isinstance(edges, Tensor) and edges.shape == self.edges.shape:
            self.edges = edges.to(self.device, torch.float64)
        self.seen = int(state["seen"])

    def totals(self) -> tuple[list[float], list[int], int]:
        """Loss sums and correct counts per node, and the samples seen (one host sync)."""
        return self.loss_sum.cpu().tolist(), self.correct.cpu().tolist(), self.seen

    def edge_means(self) -> list[dict[str, float] | None]:
        """Per edge, this epoch's mean ``loss`` (over the steps it was open), ``weight`` and
        ``term`` (over every sample, so a node's terms add up to its train_loss); None for an
        edge closed all epoch (one host sync)."""
        seen = max(self.seen, 1)
        out: list[dict[str, float] | None] = []
        for loss, term, weight, open_ in self.edges.cpu().t().tolist():
            if open_ == 0:
                out.append(None)
                continue
            out.append({"loss": loss / open_, "weight": weight / seen, "term": term / seen})
        return out

    def means(self) -> tuple[list[float], list[float]]:
        """(mean loss, top-1 %) per node so far (one host sync)."""
        seen = max(self.seen, 1)
        loss = (self.loss_sum / seen).tolist()
        top1 = (self.correct.double() * (100.0 / seen)).tolist()
        return loss, top1


def check_labels(y: Tensor, classes: int) -> None:
    """Labels outside the data's classes: a clear error (on a GPU, an asynchronous device
    assertion: checked without waiting for the device)."""
    if y.device.type != "cpu":
        torch._assert_async(
            ((y >= 0) & (y < classes)).all(), "a batch holds a label outside the data's classes"
        )
    elif y.numel() and (int(y.max()) >= classes or int(y.min()) < 0):
        raise KtgRuntimeError(
            f"a batch holds label {int(y.max())} (or {int(y.min())}) but the data has "
            f"{classes} classes (0..{classes - 1})"
        )
