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


class EpochMeter:
    """Sums over the samples seen this epoch, one slot per node (in program order)."""

    def __init__(self, n_nodes: int, device: torch.device) -> None:
        self.n, self.device = n_nodes, device
        self.reset()

    def reset(self) -> None:
        self.loss_sum = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        self.correct = torch.zeros(self.n, dtype=torch.long, device=self.device)
        self.bad = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        self.seen = 0

    def add(self, rows: Tensor, logits: Tensor, y: Tensor, losses: Tensor) -> None:
        """One batch: ``losses`` per node, ``logits`` stacked for the nodes in ``rows``."""
        with torch.no_grad():
            b = y.shape[0]
            self.loss_sum += losses.detach().double() * b
            self.bad |= ~torch.isfinite(losses.detach())
            self.correct.index_add_(0, rows, (logits.argmax(-1) == y).sum(-1))
            self.seen += b

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
            "seen": self.seen,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.loss_sum = state["loss_sum"].to(self.device)
        self.correct = state["correct"].to(self.device)
        self.bad = state["bad"].to(self.device)
        self.seen = int(state["seen"])

    def totals(self) -> tuple[list[float], list[int], int]:
        """Loss sums and correct counts per node, and the samples seen (one host sync)."""
        return self.loss_sum.cpu().tolist(), self.correct.cpu().tolist(), self.seen

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
