"""Issue 24, the files ktg reads back, each test named after its item: a ``last.pt`` with the
right digest and damaged fields (6), files read without a size limit (8: study.json, a search
journal, last.pt, a metrics log), a metrics row cut before a resume (10). Each ends in a message
and its exit code, with no traceback, and nothing already written is changed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from ktg_dsl.run import checkpoint as ckpt

from .conftest import write_spec
from .test_hunt3 import _no_traceback
from .test_robustness_runlog import stopped_run

# --------------------------------------------------------------------------- item 6


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stopped_run(tmp_path_factory.mktemp("stopped"))


def _files(run: Path) -> dict[str, bytes]:
    """The run's files (the claim's lock file aside: a resume takes it, and lets it go)."""
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.suffix != ".lock"}


DAMAGE = {
    "rng-empty": ("rng", [], "'rng' is an empty list"),
    "best-a-number": ("best", 3, "'best' is 3, not a table of each node's best score"),
    "mesh-a-string": ("mesh", "x", "'mesh' is 'x', not the mesh the run was written on"),
    "epoch-negative": ("epoch", -5, "'epoch' is -5, not an epoch from 0 to 3"),
    "epoch-past-the-end": ("epoch", 9, "'epoch' is 9, not an epoch from 0 to 3"),
    "step-a-string": ("step", "2", "'step' is '2', not a batch from 0 to 2"),
    "metrics-missing": ("metrics", None, "'metrics' is None, not the epoch's metric sums"),
    "elapsed-nan": ("elapsed", float("nan"), "'elapsed' is nan, not a time in seconds"),
    "python-rng": ("rng", [{"torch": torch.get_rng_state(), "python": 3}], "'rng.python'"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_item6_a_last_pt_with_damaged_fields_is_refused_and_nothing_changes(
    tmp_path: Path, cli: Any, stopped: Path, case: str
) -> None:
    """``epoch: -5`` trained epochs -5..0, deleted the log's rows and exited 0; the others
    were tracebacks. The digest is right: only the fields are damaged."""
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    key, value, words = DAMAGE[case]
    manifest = ckpt.load(run / "last.pt")
    manifest[key] = value
    ckpt.save(manifest, run / "last.pt")
    before = _files(run)
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 1, err
    _no_traceback(err)
    assert f"{run / 'last.pt'} is damaged: {words}" in err and "nothing was changed" in err
    assert _files(run) == before


# --------------------------------------------------------------------------- item 8

GIB = 1 << 30


def _sparse(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.truncate(size)  # no blocks on disk: only its size says 6 GB


def test_item8_the_bounded_reader(tmp_path: Path) -> None:
    import os

    from ktg_dsl.bounded import ReadRefused, read_bytes_capped, read_text_capped

    small = tmp_path / "small.json"
    small.write_text("{}")
    assert read_text_capped(small, 10, "the thing") == "{}"
    with pytest.raises(ReadRefused, match=r"the thing .* is 2 bytes, more than the 1 bytes"):
        read_bytes_capped(small, 1, "the thing")
    big = tmp_path / "big"
    _sparse(big, 6 * GIB)
    with pytest.raises(ReadRefused, match=r"is 6.0 GiB, more than the 1.0 MiB ktg reads"):
        read_bytes_capped(big, 1 << 20, "the file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ReadRefused, match="is not a regular file"):
        read_bytes_capped(fifo, 10, "the file")
    (tmp_path / "latin").write_bytes(b"caf\xe9")
    with pytest.raises(ReadRefused, match=r"is not UTF-8 text \(byte 3 is 0xe9\)"):
        read_text_capped(tmp_path / "latin", 10, "the file")


def test_item8_a_huge_study_manifest_is_refused_unread(tmp_path: Path, cli: Any) -> None:
    """Was a MemoryError traceback."""
    from .test_study import fake_study

    study = fake_study(tmp_path / "study")
    _sparse(study / "study.json", 6 * GIB)
    code, _, err = cli("study", "--summary", study)
    assert code == 2, err
    _no_traceback(err)
    assert "the study manifest" in err and "is 6.0 GiB, more than the 64.0 MiB" in err


def test_item8_a_huge_run_log_is_left_out_of_a_study_summary(tmp_path: Path, cli: Any) -> None:
    """A run's metrics.jsonl is read through the same bounded reader (ktg study, ktg plot)."""
    from .test_hunt_study import RUN
    from .test_study import fake_study

    study = fake_study(tmp_path / "study")
    _sparse(study / RUN / "metrics.jsonl", 6 * GIB)
    code, _, err = cli("study", "--summary", study)
    assert code == 0, err
    _no_traceback(err)
    assert f"warning: run {RUN} is left out" in err
    assert "the metrics log" in err and "is 6.0 GiB, more than the 2.0 GiB" in err


def test_item8_a_huge_search_journal_is_refused_unread(tmp_path: Path, cli: Any) -> None:
    from .test_search import search_spec

    data = search_spec()
    journal = tmp_path / "j.log"
    _sparse(journal, 6 * GIB)
    code, _, err = cli("search", write_spec(tmp_path, data), "--storage", journal, "--summary")
    assert code == 1, err
    _no_traceback(err)
    assert f"the study journal {journal} is 6.0 GiB, more than the 4.0 GiB" in err
    assert journal.stat().st_size == 6 * GIB


@pytest.mark.parametrize(
    ("name", "size", "words"),
    [
        ("last.pt", GIB, "run checkpoint {p} is 1.0 GiB, more than the 256.0 MiB"),
        ("metrics.jsonl", 3 * GIB, "cannot resume: the metrics log {p} is 3.0 GiB"),
    ],
)
def test_item8_a_huge_manifest_or_log_is_refused_on_resume(
    tmp_path: Path, cli: Any, stopped: Path, name: str, size: int, words: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    _sparse(run / name, size)
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 1, err
    _no_traceback(err)
    assert words.format(p=run / name) in err
    assert (run / name).stat().st_size == size


# --------------------------------------------------------------------------- item 10


def test_item10_a_cut_row_behind_the_checkpoint_is_said_to_be_lost(
    tmp_path: Path, cli: Any, stopped: Path
) -> None:
    """The warning said 'that epoch is trained again', but last.pt was past it."""
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    metrics = run / "metrics.jsonl"
    whole = metrics.read_bytes()
    metrics.write_bytes(whole[: len(whole) // 2])  # epoch 0's row, cut; last.pt is at epoch 1
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 0, err
    assert "last.pt is past epoch 0 (the run continues at epoch 1)" in err
    assert "the row of node(s) a for that epoch is lost" in err
    assert "trained again" not in err
    epochs = [line for line in metrics.read_text().splitlines()]
    assert len(epochs) == 2  # epochs 1 and 2 trained; epoch 0's row is the one lost


def test_item10_a_cut_row_of_an_epoch_trained_again_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ktg_dsl.run.logs import RunLog
    from ktg_dsl.run.rundir import RunDir

    from .test_robustness_runlog import log_file, row

    run: RunDir = log_file(tmp_path, row(0) + row(0, "b") + row(1) + row(1, "b")[:9])
    RunLog(run, ["a", "b"], start_epoch=1, tensorboard=False).close()
    assert run.metrics.read_bytes() == row(0) + row(0, "b")
    assert capsys.readouterr().err.endswith("(9 bytes); that epoch is trained again\n")
