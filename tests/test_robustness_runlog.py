"""What a run keeps: metrics.jsonl on resume (a last row cut short by a kill is dropped with a
warning; a damaged log, not UTF-8, a row in the middle that is not one, a folder, a FIFO, is
refused with a message naming it, and nothing is changed), best checkpoints through a failed
write, and checkpoints that are not files refused at once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from ktg_dsl.check import load_spec
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.run import checkpoint as ckpt
from ktg_dsl.run.epochs import save_best
from ktg_dsl.run.logs import RunLog
from ktg_dsl.run.recipe import Recipe
from ktg_dsl.run.rundir import RunDir

from .conftest import write_spec
from .test_train import tiny_spec


def row(epoch: int, node: str = "a") -> bytes:
    return json.dumps({"epoch": epoch, "node": node, "val_top1": 50.0}).encode() + b"\n"


def log_file(tmp_path: Path, data: bytes) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.metrics.write_bytes(data)
    return run


def test_a_cut_last_row_is_dropped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = log_file(tmp_path, row(0) + row(1) + row(2)[:17])
    RunLog(run, ["a"], start_epoch=2, tensorboard=False).close()
    assert run.metrics.read_bytes() == row(0) + row(1)
    assert capsys.readouterr().err == (
        f"ktg: warning: {run.metrics}: dropped its last row, cut short when the run stopped "
        "(17 bytes); that epoch is trained again\n"
    )


def test_rows_of_epochs_to_redo_go_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = log_file(tmp_path, row(0) + row(1) + row(2) + row(2, "b"))
    RunLog(run, ["a"], start_epoch=1, tensorboard=False).close()
    assert run.metrics.read_bytes() == row(0)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            row(0) + b'{"epoch": 1, "node": "\xff\xfe"}\n' + row(2),
            "cannot resume: {p} is damaged at line 2: it is not UTF-8 text; move the file "
            "aside to resume without the earlier rows (nothing was changed)",
        ),
        (
            row(0) + b'{"epoch": 1, "no\n' + row(2),
            "cannot resume: {p} is damaged at line 2: it is not a JSON row; move the file "
            "aside to resume without the earlier rows (nothing was changed)",
        ),
        (
            row(0) + b'{"node": "a"}\n',
            "cannot resume: {p} is damaged at line 2: the row has no epoch number; move the "
            "file aside to resume without the earlier rows (nothing was changed)",
        ),
    ],
    ids=["not-utf8", "cut-in-the-middle", "no-epoch"],
)
def test_a_damaged_log_is_refused_unchanged(tmp_path: Path, data: bytes, message: str) -> None:
    run = log_file(tmp_path, data)
    with pytest.raises(KtgRuntimeError) as info:
        RunLog(run, ["a"], start_epoch=1, tensorboard=False)
    assert str(info.value) == message.format(p=run.metrics)
    assert run.metrics.read_bytes() == data


@pytest.mark.timeout(60)
def test_a_log_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.metrics.mkdir(parents=True)
    with pytest.raises(KtgRuntimeError, match=r"metrics.jsonl is a folder, not the run's"):
        RunLog(run, ["a"], start_epoch=1, tensorboard=False)
    assert run.metrics.is_dir()
    run.metrics.rmdir()
    os.mkfifo(run.metrics)  # reading it would wait forever
    with pytest.raises(KtgRuntimeError, match="is not a regular file"):
        RunLog(run, ["a"], start_epoch=1, tensorboard=False)


def stopped_run(tmp_path: Path) -> Path:
    """A run of 3 epochs stopped (as by Ctrl-C) after its first: last.pt is at epoch 1."""
    data = tiny_spec(train_size=32, epochs=3)
    data["nodes"] = {"a": {"model": {"type": "small_cnn", "width": 4}}}
    data["gate_matrix"] = [["through"]]
    spec = load_spec(write_spec(tmp_path, data))
    run = tmp_path / "run"
    recipe = Recipe(spec, run, progress=False, tensorboard=False)

    def stop(epoch: int, rows: Any) -> None:
        recipe.stop.requested = True

    recipe.hooks.append(stop)
    recipe.setup()
    try:
        assert recipe.train().interrupted
    finally:
        recipe.cleanup()
    return run


def test_resume_refuses_a_damaged_log_and_changes_nothing(tmp_path: Path, cli) -> None:
    run = stopped_run(tmp_path)
    metrics, last = run / "metrics.jsonl", run / "last.pt"
    rows = metrics.read_bytes()
    damaged = rows + b"\xff\xfe not a row\n" + row(1)
    bad_line = rows.count(b"\n") + 1
    metrics.write_bytes(damaged)
    checkpoint = last.read_bytes()
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 1 and "Traceback" not in err
    assert (
        f"ktg: error: cannot resume: {metrics} is damaged at line {bad_line}: it is not UTF-8"
        in err
    )
    assert metrics.read_bytes() == damaged and last.read_bytes() == checkpoint

    metrics.unlink()
    metrics.mkdir()
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 1 and f"cannot resume: {metrics} is a folder" in err and "Traceback" not in err
    assert last.read_bytes() == checkpoint


@pytest.mark.slow
def test_a_log_moved_aside_resumes(tmp_path: Path, cli) -> None:
    run = stopped_run(tmp_path)
    metrics = run / "metrics.jsonl"
    metrics.rename(run / "metrics.damaged")
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 0, err
    assert {json.loads(r)["epoch"] for r in metrics.read_text().splitlines()} == {1, 2}


def test_a_failed_best_save_keeps_the_previous_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(write_spec(tmp_path, tiny_spec(train_size=32, epochs=2)))
    recipe = Recipe(spec, tmp_path / "run", progress=False, tensorboard=False)
    recipe.setup()
    program, run, best = recipe.program, recipe.run, {}
    rows = {n: {"val_top1": 50.0} for n in program.names}
    save_best(program, run, 0, rows, best, recipe.engine.coordinator)
    kept = run.best("a").read_bytes()
    real_save = torch.save

    def full(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        real_save(obj, f, *args, **kwargs)  # a partial write, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    better = {n: {"val_top1": 75.0} for n in program.names}
    with pytest.raises(KtgRuntimeError, match="No space left on device"):
        save_best(program, run, 1, better, best, recipe.engine.coordinator)
    recipe.cleanup()
    assert run.best("a").read_bytes() == kept
    assert ckpt.load(run.best("a"))["epoch"] == 0
    assert not list(run.path.rglob("*.tmp")), "no temporary file left behind"


@pytest.mark.timeout(60)
def test_a_checkpoint_that_is_not_a_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "teacher.pt"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    with pytest.raises(KtgRuntimeError, match="is not a regular file, not a checkpoint file"):
        ckpt.load(fifo, "teacher checkpoint")
