"""The progress display: on a terminal the bar moves every step and its numbers refresh on a
clock (one host sync each), whatever the epoch's length; elsewhere a readable table."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import pytest

from ktg_dsl.run.progress import Progress

from .conftest import run_ktg, write_spec
from .test_train import tiny_spec


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def row(loss: float, train: float, val: float | None, frozen: bool = False) -> dict[str, Any]:
    return {
        "train_loss": loss,
        "train_top1": train,
        "val_top1": val,
        "frozen": frozen,
        "epoch_time": 1.25,
    }


def test_the_bar_moves_every_step_and_peeks_on_a_clock() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress(True, stream, clock=clock)
    peeks = []

    def peek() -> dict[str, tuple[float, float]]:
        peeks.append(clock.now)
        return {"a": (0.5, 90.0)}

    progress.start(0, 3, total=35)  # shorter than any old log_every: it still moves
    for _ in range(35):
        clock.now += 0.1  # 3.5 s in all
        progress.step(peek)
    assert progress.steps == 35  # the bar counted every step (tqdm draws it as it sees fit)
    # refreshed about twice a second: 7 times in 3.5 s, never every step
    assert 6 <= len(peeks) <= 7
    assert all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(peeks))
    assert "a 0.500/90.0%" in stream.getvalue()


def test_outside_a_terminal_a_table_with_one_row_per_epoch() -> None:
    stream = io.StringIO()
    progress = Progress(True, stream)
    peeked = []
    progress.start(0, 30, total=10)
    progress.step(lambda: peeked.append(1) or {})  # no bar: never syncs
    rows = {
        "cnn_a": row(0.1234, 98.5, 97.0),
        "cnn_b": row(0.2, 96.0, 95.5),
        "t": row(0, 0, 90, True),
    }
    progress.end(0, 30, rows, "test")
    progress.end(1, 30, rows, "test")
    lines = stream.getvalue().splitlines()
    assert not peeked
    assert len(lines) == 4  # two header lines, two epochs
    assert "cnn_a" in lines[0] and "cnn_b" in lines[0] and "t" not in lines[0].split()
    assert "test" in lines[1] and "val" not in lines[1]
    assert lines[2].split() == [
        "1/30",
        "0.123",
        "98.50%",
        "97.00%",
        "0.200",
        "96.00%",
        "95.50%",
        "1.2s",
    ]
    assert all(len(line) < 100 for line in lines)


def test_many_nodes_show_their_evaluation_only() -> None:
    stream = io.StringIO()
    progress = Progress(True, stream)
    rows = {f"node{i}": row(0.1, 90.0, 80.0 + i) for i in range(8)}
    progress.end(4, 10, rows, "val")
    header, line = stream.getvalue().splitlines()
    assert "val top-1" in header
    assert line.split()[:3] == ["5/10", "80.00", "81.00"]


def test_disabled_prints_nothing() -> None:
    stream = Terminal()
    progress = Progress(False, stream)
    progress.start(0, 1, 3)
    progress.step(lambda: {})
    progress.end(0, 1, {"a": row(1, 2, 3)}, "val")
    progress.note("stopped")
    assert stream.getvalue() == ""


@pytest.mark.slow
def test_ktg_train_outside_a_terminal_prints_rows_not_bars(tmp_path: Path) -> None:
    """The real command with its stderr in a pipe: no bar, no carriage return, one row per
    epoch (the recipe once re-enabled the bar whatever the stream was)."""
    spec = write_spec(tmp_path, tiny_spec(train_size=64, epochs=2))
    done = run_ktg("train", spec, "--run-dir", tmp_path / "run", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "it/s" not in done.stderr, done.stderr
    rows = [line.split()[0] for line in done.stderr.splitlines() if "/2 " in line]
    assert rows == ["1/2", "2/2"], done.stderr
