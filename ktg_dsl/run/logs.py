"""What a run writes as it goes: ``metrics.jsonl`` (one line per epoch and node) and TensorBoard
event files per node (the original KTG's tags: train_loss, train_score, train_lr, test_score)."""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any, TextIO

from ..atomic import write_text_atomic
from ..bounded import GIB, ReadRefused, read_bytes_capped
from ..errors import KtgRuntimeError
from .rundir import RunDir

LOG_LIMIT = 2 * GIB  # rows of ~300 bytes: millions of epochs x nodes

TB_TAGS = {
    "train_loss": "train_loss",
    "train_top1": "train_score",
    "lr": "train_lr",
    "val_top1": "test_score",
    "val_loss": "test_loss",
    "knn_top1": "knn_score",  # a self-supervised graph (test_score holds the same value)
    "probe_top1": "probe_score",
}
# per incoming edge (in the receiver's event files, so a node's edges share a section):
EDGE_TAGS = {"term": "edge_term", "weight": "edge_weight", "loss": "edge_loss"}


class RunLog:
    def __init__(
        self, run: RunDir, nodes: list[str], start_epoch: int = 0, tensorboard: bool = True
    ) -> None:
        self.path = run.metrics
        self._nodes = nodes
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
        lines, cut = _rows(self.path)
        rows = [(line, json.loads(line)) for line in lines]
        kept = [line for line, row in rows if row["epoch"] < epoch]
        if cut:
            _warn_cut(self.path, cut, epoch, self._nodes, [row for _, row in rows])
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
                for edge, values in (row.get("edges") or {}).items():
                    for key, tag in EDGE_TAGS.items():
                        writer.add_scalar(f"{tag}/{edge}", values[key], epoch + 1)
        self._file.flush()
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        self._file.close()
        for writer in self._writers.values():
            writer.close()


def _rows(path: Path) -> tuple[list[str], int]:
    """The whole rows of a metrics log, and the length of a last line cut short by a kill
    (dropped; 0 when there is none)."""
    data = _read_log(path)
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last line end: b"" unless a kill cut the last row
    cut = 0
    if tail.strip():
        try:
            lines.append(_row(tail, path, len(lines) + 1).encode())
        except KtgRuntimeError:
            cut = len(tail)
    return [_row(line, path, n) for n, line in enumerate(lines, start=1) if line.strip()], cut


def _warn_cut(
    path: Path, size: int, start: int, nodes: list[str], rows: list[dict[str, Any]]
) -> None:
    """Say what the dropped row costs: nothing when its epoch is trained again (the run
    continues at or before it), the rows that are lost for good when last.pt is past them."""
    logged = {(row.get("node"), row["epoch"]) for row in rows}
    lost = [n for n in nodes if start > 0 and (n, start - 1) not in logged]
    head = f"ktg: warning: {path}: dropped its last row, cut short when the run stopped"
    head += f" ({size:,} bytes)"
    if not lost:
        print(f"{head}; that epoch is trained again", file=sys.stderr)
        return
    print(
        f"{head}; last.pt is past epoch {start - 1} (the run continues at epoch {start}), so "
        f"the row of node(s) {', '.join(lost)} for that epoch is lost (the other rows and the "
        "checkpoints are kept)",
        file=sys.stderr,
    )


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
    """The log's bytes; only a regular file of a bounded size is read (a FIFO would never
    end; a huge one would fill memory)."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise KtgRuntimeError(
                f"cannot resume: {path} is {kind}, not the run's metrics log; move it aside "
                "(nothing was changed)"
            )
        return read_bytes_capped(path, LOG_LIMIT, "the metrics log")
    except OSError as exc:
        raise KtgRuntimeError(
            f"cannot resume: cannot read {path}: {exc.strerror or exc} (nothing was changed)"
        ) from None
    except ReadRefused as exc:
        raise KtgRuntimeError(f"cannot resume: {exc}") from None


class DamagedLog(KtgRuntimeError):
    """A metrics log that cannot be read as one (what and where is in the message)."""


_PERCENTS = ("train_top1", "val_top1", "knn_top1", "probe_top1")  # accuracies: 0 to 100
_LOSSES = ("train_loss", "val_loss")  # a diverged loss (NaN, inf) is a true record
_AMOUNTS = ("lr", "epoch_time", "elapsed")  # finite, not negative
MAX_EPOCH = 1_000_000  # the schema's bound on train.epochs


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl for reading (``ktg plot``, ``ktg study``), each
    checked: an object with its node, its epoch and numbers where numbers go. A last row cut
    short (a run still writing it, or killed while it did) is left out with a warning; any
    other damage raises DamagedLog naming the line. Only a regular file is read."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise DamagedLog(f"{path} is {kind}, not a run's metrics log")
        data = read_bytes_capped(path, LOG_LIMIT, "the metrics log")
    except OSError as exc:
        raise DamagedLog(f"cannot read {path}: {exc.strerror or exc}") from None
    except ReadRefused as exc:  # a huge (or sparse) file: refused by its size, not read
        raise DamagedLog(str(exc)) from None
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last line end: b"" unless the last row was cut
    rows = [_checked_row(line, path, n) for n, line in enumerate(lines, 1) if line.strip()]
    if tail.strip():
        try:
            rows.append(_checked_row(tail, path, len(lines) + 1))
        except DamagedLog:
            print(
                f"ktg: warning: {path}: its last row is cut short ({len(tail):,} bytes); left out",
                file=sys.stderr,
            )
    return rows


def _checked_row(line: bytes, path: Path, number: int) -> dict[str, Any]:
    def damaged(what: str) -> DamagedLog:
        return DamagedLog(f"{path} is damaged at line {number}: {what}")

    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise damaged("it is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise damaged("it is not a JSON row") from None
    if not isinstance(row, dict):
        raise damaged("the row is not a JSON object")
    if not isinstance(row.get("node"), str) or not row["node"]:
        raise damaged("the row names no node")
    epoch = row.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < MAX_EPOCH:
        raise damaged(f"the row's epoch is {_shown(epoch)}, not an epoch number")
    for key in (*_PERCENTS, *_LOSSES, *_AMOUNTS):
        value = row.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise damaged(f"'{key}' is {_shown(value)}, not a number")
        try:
            value = row[key] = float(value)  # a whole number past a float's range is damage
        except OverflowError:
            raise damaged(f"'{key}' is {_shown(value)}, a number too large") from None
        if key in _LOSSES:
            continue
        if not math.isfinite(value) or value < 0 or (key in _PERCENTS and value > 100):
            limits = "from 0 to 100" if key in _PERCENTS else "finite and not negative"
            raise damaged(f"'{key}' is {_shown(value)}; it must be {limits}")
    _check_edges(row.get("edges"), damaged)
    if not isinstance(row.get("frozen", False), bool):
        raise damaged(f"'frozen' is {_shown(row['frozen'])}, not true or false")
    return row


def _check_edges(edges: Any, damaged: Any) -> None:
    """A row's ``edges``: per edge key, its ``loss`` and ``term`` (numbers: a diverged loss is a
    true record) and its ``weight`` (finite, not negative)."""
    if edges is None:
        return
    if not isinstance(edges, dict):
        raise damaged(f"'edges' is {_shown(edges)}, not an object of edges")
    for key, values in edges.items():
        if not isinstance(values, dict):
            raise damaged(f"'edges.{key}' is {_shown(values)}, not an object")
        for name in ("loss", "weight", "term"):
            value = values.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise damaged(f"'edges.{key}.{name}' is {_shown(value)}, not a number")
            where = f"'edges.{key}.{name}' is {_shown(value)}"
            try:
                value = values[name] = float(value)
            except OverflowError:
                raise damaged(f"{where}, a number too large") from None
            if name == "weight" and not (math.isfinite(value) and value >= 0):
                raise damaged(f"{where}; it must be finite and not negative")


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class NullLog:
    """The log of a process that does not write the run's files (a rank other than 0)."""

    def epoch(self, epoch: int, rows: dict[str, dict[str, Any]]) -> None:
        return None

    def close(self) -> None:
        return None
