"""What a run writes as it goes: ``metrics.jsonl`` (one line per epoch and node) and TensorBoard
event files per node (the original KTG's tags: train_loss, train_score, train_lr, test_score)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from ..atomic import write_text_atomic
from .rundir import RunDir

TB_TAGS = {
    "train_loss": "train_loss",
    "train_top1": "train_score",
    "lr": "train_lr",
    "val_top1": "test_score",
}


class RunLog:
    def __init__(
        self, run: RunDir, nodes: list[str], start_epoch: int = 0, tensorboard: bool = True
    ) -> None:
        self.path = run.metrics
        self._truncate_from(start_epoch)
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        self._writers: dict[str, Any] = {}
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            for name in nodes:
                # purge_step drops events a killed run wrote past its checkpoint
                self._writers[name] = SummaryWriter(
                    str(run.tensorboard(name)), purge_step=start_epoch + 1
                )

    def _truncate_from(self, epoch: int) -> None:
        """Keep only the lines of epochs before ``epoch`` (a resumed run redoes the rest)."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["epoch"] < epoch:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
        write_text_atomic(self.path, "".join(f"{k}\n" for k in kept))

    def epoch(self, epoch: int, rows: dict[str, dict[str, Any]]) -> None:
        for node, row in rows.items():
            record = {"epoch": epoch, "node": node, **row}
            self._file.write(json.dumps(record, sort_keys=False) + "\n")
            writer = self._writers.get(node)
            if writer is not None:
                for key, tag in TB_TAGS.items():
                    value = row.get(key)
                    if value is not None:
                        writer.add_scalar(tag, value, epoch + 1)  # the original counts from 1
        self._file.flush()
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        self._file.close()
        for writer in self._writers.values():
            writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
