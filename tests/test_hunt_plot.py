"""Issue 24, the bad-input hunt, ``ktg plot``'s items: item 7 (an output that is the log, a
log of extreme values) and item 8 (a huge log)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ktg_dsl.cli import main


def fake_run(folder: Path, losses: list[float]) -> Path:
    """A run directory whose metrics.jsonl has one row per loss (node a)."""
    folder.mkdir()
    rows = [
        {"epoch": e, "node": "a", "train_loss": loss, "train_top1": 50.0, "val_top1": 40.0}
        for e, loss in enumerate(losses)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_item7_plot_never_writes_over_its_metrics_log(tmp_path: Path, capsys: Any) -> None:
    run = fake_run(tmp_path / "run", [1.0, 0.5])
    log = run / "metrics.jsonl"
    before = log.read_bytes()
    link = tmp_path / "m.svg"
    link.symlink_to(log)
    assert main(["plot", str(run), "-o", str(link)]) == 2
    assert "would replace it" in capsys.readouterr().err
    (run / "curves.svg").symlink_to(log)  # the default output, a link to the log
    assert main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    assert "metrics log" in err and "Traceback" not in err
    assert log.read_bytes() == before


@pytest.mark.slow
def test_item7_plot_of_extreme_losses_draws_what_it_can(tmp_path: Path, capsys: Any) -> None:
    run = fake_run(tmp_path / "run", [1e308, -1e308, 2.0, float("nan")])
    out = tmp_path / "c.svg"
    assert main(["plot", str(run), "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.stat().st_size > 0


def test_item8_plot_refuses_a_huge_log_without_reading_it(tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with (run / "metrics.jsonl").open("wb") as f:
        f.truncate(6 * 2**30)  # sparse: no disk used, 6 GB long
    if os.stat(run / "metrics.jsonl").st_blocks * 512 > 2**20:
        pytest.skip("this file system does not keep sparse files")
    assert main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    assert "more than the 2.0 GiB ktg reads for it" in err and "Traceback" not in err
