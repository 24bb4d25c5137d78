"""The interface a recipe drives: any engine (one process, several) implements it.

``Engine`` (``core.py``) is the single-process implementation; ``ktg_dsl.Engine(program)``
builds one. A recipe depends on this protocol only, so another engine swaps in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from torch import Tensor

from .mesh import Coordinator
from .program import Program


class TrainingEngine(Protocol):
    program: Program
    coordinator: Coordinator  # who writes which files, agreeing to stop (one process: Solo)

    def train_step(
        self, x: Tensor, y: Tensor, epoch: int, step: int | None = None
    ) -> dict[str, Tensor]:
        """One step of every node; losses stay on the device (no host sync)."""
        ...

    def end_epoch(self, epoch: int) -> dict[str, dict[str, Any]]:
        """The epoch's train_loss, train_top1 and lr per trained node (one sync); steps the
        per-epoch schedulers. Raises NonFiniteLossError when a loss broke."""
        ...

    def evaluate_metrics(
        self, batches: Iterable[tuple[Tensor, Tensor]]
    ) -> dict[str, dict[str, float]]:
        """top1 (%) and loss of every node on ``batches``."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def metrics_state(self) -> dict[str, Any]:
        """The partial epoch's metric sums, for a checkpoint taken mid-epoch."""
        ...

    def load_metrics_state(self, state: dict[str, Any]) -> None: ...

    def has_nonfinite(self) -> bool:
        """Whether a loss broke since the last read (one host sync)."""
        ...

    def nonfinite_nodes(self) -> list[str]: ...

    def raise_if_nonfinite(self, epoch: int) -> None:
        """NonFiniteLossError naming the nodes whose loss broke since the last read."""
        ...

    def peek(self) -> dict[str, tuple[float, float]]:
        """(mean loss, top-1 %) so far this epoch per trained node (one host sync)."""
        ...
