"""A new user's first ``ktg train``: a missing teacher is a validation error (``--deep``: one
that does not fit), missing data stops the run before a run directory is claimed, and a failed
run or download leaves nothing behind."""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from .conftest import write_spec

Cli = Callable[..., tuple[int, str, str]]


def synthetic(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": 1,
        "name": "contact",
        "seed": 1,
        "data": {
            "dataset": {"type": "synthetic", "num_classes": 4, "image_size": 8, "train_size": 64},
            "batch_size": 16,
        },
        "train": {"epochs": 1, "precision": "fp32", "device": "cpu"},
        "nodes": {"s": {"model": {"type": "small_cnn", "width": 4}}},
        "edges": [{"to": "s", "from": "labels"}],
    }
    data.update(changes)
    return data


def with_teacher(checkpoint: str, width: int = 8) -> dict[str, Any]:
    data = synthetic()
    data["nodes"]["t"] = {
        "model": {"type": "small_cnn", "width": width},
        "frozen": True,
        "checkpoint": checkpoint,
    }
    data["edges"].append({"to": "s", "from": "t"})
    return data


def checkpoint_line(path: Path) -> int:
    return next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "checkpoint:" in t)


def no_data_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import ktg_dsl.run.recipe
    import ktg_dsl.run.session

    def fail(*_: Any) -> None:
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(ktg_dsl.run.session, "load_bundle", fail)
    monkeypatch.setattr(ktg_dsl.run.recipe, "load_bundle", fail)


# --------------------------------------------------------------------------- teachers


def test_a_missing_teacher_is_a_validation_error_at_its_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, with_teacher("teachers/t.pt"))
    code, out, err = cli("validate", spec)
    assert code == 1 and out == ""
    line = checkpoint_line(spec)
    assert f"spec.yaml:{line}:5  nodes.t.checkpoint: checkpoint of node 't' does not exist" in err
    assert "train the teacher first" in err and "or fix the path" in err
    assert f"a relative path is read from the working directory, {tmp_path}" in err
    # train stops at the same message, before loading any data or claiming a directory
    no_data_loads(monkeypatch)
    code, _, train_err = cli("train", spec, "--no-progress")
    assert code == 1 and err.splitlines()[0] in train_err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_a_teacher_checkpoint_that_is_a_folder(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "best").mkdir()
    code, _, err = cli("validate", write_spec(tmp_path, with_teacher(str(tmp_path / "best"))))
    assert code == 1
    assert "checkpoint of node 't' is a folder, not a checkpoint file" in err
    assert "working directory" not in err  # an absolute path


def test_a_student_checkpoint_that_is_missing_says_fix_the_path(cli: Cli, tmp_path: Path) -> None:
    data = synthetic()
    data["nodes"]["s"]["checkpoint"] = str(tmp_path / "start.pt")
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1 and "checkpoint of node 's' does not exist" in err
    assert "(fix the path)" in err


def test_the_kd_hint_names_the_spec_that_trains_the_teacher(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    write_spec(tmp_path / "specs", synthetic(name="pre"), "pre.yaml")
    kd = write_spec(tmp_path / "specs", with_teacher("runs/pre/latest/best/t.pt"), "kd.yaml")
    code, _, err = cli("validate", "specs/kd.yaml")
    assert code == 1
    assert "train the teacher first: `ktg train specs/pre.yaml` writes it; or fix the path" in err
    assert kd.exists()


def _small_cnn_weights(path: Path, width: int) -> None:
    from ktg_dsl.registry import MODELS

    model = MODELS.get("small_cnn").build({"width": width}, num_classes=4, in_channels=3)
    torch.save(model.state_dict(), path)


def test_deep_loads_each_checkpoint_into_its_model_on_meta(cli: Cli, tmp_path: Path) -> None:
    good, other, junk = tmp_path / "good.pt", tmp_path / "other.pt", tmp_path / "junk.pt"
    _small_cnn_weights(good, 8)
    _small_cnn_weights(other, 16)
    junk.write_bytes(b"not a checkpoint")
    spec = write_spec(tmp_path, with_teacher(str(good)))
    code, out, err = cli("validate", "--deep", spec)
    assert code == 0, err
    assert "models checked on the meta device" in out

    spec = write_spec(tmp_path, with_teacher(str(other)), "other.yaml")
    assert cli("validate", spec)[0] == 0  # without --deep only its existence is checked
    code, _, err = cli("validate", "--deep", spec)
    assert code == 1
    line = checkpoint_line(spec)
    assert (
        f"other.yaml:{line}:5  nodes.t.checkpoint: checkpoint {other} does not fit node 't'" in err
    )
    assert "shape mismatch" in err and "small_cnn" in err and "Traceback" not in err

    code, _, err = cli(
        "validate", "--deep", write_spec(tmp_path, with_teacher(str(junk)), "j.yaml")
    )
    assert code == 1 and "corrupt or not a PyTorch checkpoint" in err


# --------------------------------------------------------------------------- data first


def cifar_spec(tmp_path: Path, **data: Any) -> Path:
    spec = synthetic()
    spec["data"] = {"dataset": "cifar100", "root": "data/cifar100", "batch_size": 16, **data}
    return write_spec(tmp_path, spec)


def test_missing_cifar_claims_nothing_and_creates_nothing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = cifar_spec(tmp_path)
    code, out, err = cli("train", spec, "--no-progress")
    assert code == 1 and out == ""
    assert "CIFAR-100 not found" in err and "download: true" in err
    assert str(tmp_path / "data" / "cifar100" / "cifar-100-python") in err
    assert "ktg: run " not in err  # no run directory was announced
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]
    code, _, err = cli("train", spec, "--no-progress", "--run-dir", tmp_path / "mine")
    assert code == 1 and not (tmp_path / "mine").exists()


def test_a_failed_download_leaves_no_data_folder(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.cifar

    def offline(url: str, root: str, **_: Any) -> None:
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / "cifar-100-python.tar.gz.part").write_bytes(b"half")
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("train", cifar_spec(tmp_path, download=True), "--no-progress")
    assert code == 1 and "could not download CIFAR-100" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_a_used_run_dir_is_refused_before_the_data_is_loaded(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "metrics.jsonl").write_text("{}\n")
    spec = write_spec(tmp_path, synthetic())
    no_data_loads(monkeypatch)
    code, _, err = cli("train", spec, "--no-progress", "--run-dir", used)
    assert code == 1 and "already holds a run" in err
    assert (used / "metrics.jsonl").read_text() == "{}\n"


def test_a_run_that_fails_at_once_leaves_no_runs_folder(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, synthetic())
    code, _, err = cli("train", spec, "--no-progress", "--set", "defaults.optimizer.lr=1e30")
    assert code == 1 and "NaN" in err
    assert not (tmp_path / "runs").exists()  # neither runs/contact/<time> nor runs/contact
    # a folder that was there before is kept
    (tmp_path / "runs" / "contact").mkdir(parents=True)
    code, _, _ = cli("train", spec, "--no-progress", "--set", "defaults.optimizer.lr=1e30")
    assert code == 1 and list((tmp_path / "runs" / "contact").iterdir()) == []


def test_training_still_works_after_the_data_moved_first(cli: Cli, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, synthetic())
    code, out, err = cli("train", spec, "--no-progress", "--run-dir", tmp_path / "run")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("ktg: ")]
    assert lines[0] == f"ktg: run {tmp_path / 'run'}"
    assert "synthetic" in lines[1].lower()
    assert (tmp_path / "run" / "last.pt").exists() and "run directory" in out
    assert yaml.safe_load((tmp_path / "run" / "spec.resolved.yaml").read_text())["name"]
