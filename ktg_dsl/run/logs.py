"""What a run writes as it goes: ``metrics.jsonl`` (one line per epoch and node) and TensorBoard
event files per node (the original KTG's tags: train_loss, train_score, train_lr, test_score)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, TextIO

from ..atomic import write_text_atomic
from ..errors import KtgRuntimeError
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
        """Keep only the lines of epochs before ``epoch`` (a resumed run redoes the rest). A
        last line cut short by a kill is dropped with a warning; a damaged file (not UTF-8, a
        line in the middle that is not a row, not a file at all) is refused, unchanged."""
        if not os.path.lexists(self.path):
            return
        kept = [line for line in _rows(self.path) if json.loads(line)["epoch"] < epoch]
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


def _rows(path: Path) -> list[str]:
    """The whole rows of a metrics log; a cut last line is dropped (with a warning)."""
    data = _read_log(path)
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last line end: b"" unless a kill cut the last row
    if tail.strip():
        try:
            lines.append(_row(tail, path, len(lines) + 1).encode())
        except KtgRuntimeError:
            print(
                f"ktg: warning: {path}: dropped its last row, cut short when the run stopped "
                f"({len(tail):,} bytes); that epoch is trained again",
                file=sys.stderr,
            )
    return [_row(line, path, n) for n, line in enumerate(lines, start=1) if line.strip()]


def _row(line: bytes, path: Path, number: int) -> str:
    """One row as text; a KtgRuntimeError naming the line if it is not one."""
    damaged = f"cannot resume: {path} is damaged at line {number}"
    hint = "; move the file aside to resume without the earlier rows (nothing was changed)"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise KtgRuntimeError(f"{damaged}: it is not UTF-8 text{hint}") from None
    try:
        row = json.loads(text)
    except ValueError:
        raise KtgRuntimeError(f"{damaged}: it is not a JSON row{hint}") from None
    epoch = row.get("epoch") if isinstance(row, dict) else None
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise KtgRuntimeError(f"{damaged}: the row has no epoch number{hint}")
    return text


def _read_log(path: Path) -> bytes:
    """The log's bytes; only a regular file is read (a FIFO would never end)."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise KtgRuntimeError(
                f"cannot resume: {path} is {kind}, not the run's metrics log; move it aside "
                "(nothing was changed)"
            )
        return path.read_bytes()
    except OSError as exc:
        raise KtgRuntimeError(
            f"cannot resume: cannot read {path}: {exc.strerror or exc} (nothing was changed)"
        ) from None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


class NullLog:
    """The log of a process that does not write the run's files (a rank other than 0)."""

    def epoch(self, epoch: int, rows: dict[str, dict[str, Any]]) -> None:
        return None

    def close(self) -> None:
        return None
