"""``ktg train`` end to end: run directories, logs, checkpoints, resume after a kill, Ctrl-C,
teachers, and every bad input the issue lists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from ktg_dsl.check import load_spec
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.run import checkpoint as ckpt
from ktg_dsl.run.logs import read_metrics
from ktg_dsl.run.recipe import Recipe

from .conftest import ROOT, STOPPING, release, run_ktg, start_ktg_marked, write_spec

TIMING = ("epoch_time", "elapsed")


def tiny_spec(train_size: int = 256, epochs: int = 3, **train: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "tiny",
        "seed": 7,
        "data": {
            "dataset": {
                "type": "synthetic",
                "num_classes": 4,
                "image_size": 8,
                "train_size": train_size,
                "val_size": 64,
                "augment": True,
            },
            "batch_size": 16,
        },
        "train": {"epochs": epochs, "precision": "fp32", "device": "cpu", **train},
        "defaults": {"optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9}},
        "nodes": {
            "a": {"model": {"type": "small_cnn", "width": 4}},
            "b": {"model": {"type": "wrn", "depth": 10, "width": 1, "dropout": 0.3}},
        },
        "gate_matrix": [["through", "positive_linear"], ["through", "through"]],
    }


write = write_spec


PLUGIN = ("--plugin", "ktg_test_plugin")


def ktg(*args: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_ktg(*args, cwd=cwd, env={})


def untimed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def final_state(run: Path) -> dict[str, Any]:
    from ktg_dsl.run.manifest import node_states

    manifest = ckpt.load(run / "last.pt")
    return node_states(run / "last.pt", manifest, list(manifest["nodes"]))


def assert_same_states(a: dict[str, Any], b: dict[str, Any]) -> None:
    for node in a:
        for key, value in a[node]["model"].items():
            assert torch.equal(value, b[node]["model"][key]), f"{node}.{key}"
        sa, sb = a[node]["optimizer"]["state"], b[node]["optimizer"]["state"]
        for pid in sa:
            for key, value in sa[pid].items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, sb[pid][key]), f"{node} optimizer {pid}.{key}"


@pytest.mark.slow
def test_quickstart_run_directory(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(
        "train", ROOT / "specs" / "quickstart.yaml", "--set", "train.epochs=2", "--no-progress"
    )
    assert code == 0, err
    runs = list((tmp_path / "runs" / "quickstart").iterdir())
    run = next(p for p in runs if p.name != "latest")
    assert (tmp_path / "runs" / "quickstart" / "latest").resolve() == run.resolve()
    assert {p.name for p in run.iterdir()} >= {
        "spec.resolved.yaml",
        "metrics.jsonl",
        "last.pt",
        "best",
        "tb",
        "run.json",
    }
    assert sorted(p.name for p in (run / "best").iterdir()) == ["cnn_a.pt", "cnn_b.pt", "cnn_c.pt"]
    # the final table
    assert "best val top-1" in out and "cnn_a" in out and "2 epochs in" in out
    # the resolved spec validates and spells out every default
    resolved = load_spec(run / "spec.resolved.yaml")
    assert resolved.train.epochs == 2
    assert resolved.defaults.optimizer.args["dampening"] == 0.0
    rows = read_metrics(run / "metrics.jsonl")
    assert len(rows) == 2 * 3
    assert {r["node"] for r in rows} == {"cnn_a", "cnn_b", "cnn_c"}
    row = rows[-1]
    for key in ("train_loss", "train_top1", "val_top1", "lr", "gates", "epoch_time"):
        assert row[key] is not None, key
    assert row["gates"] == {"labels": 1.0, "cnn_a": 1.0, "cnn_b": 1.0}


@pytest.mark.slow
def test_tensorboard_events_hold_the_metrics(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec = load_spec(write(tmp_path, tiny_spec(epochs=2)))
    run = tmp_path / "run"
    trainer = Recipe(spec, run, progress=False)
    trainer.setup()
    trainer.train()
    trainer.cleanup()
    rows = read_metrics(run / "metrics.jsonl")
    for node in ("a", "b"):
        acc = EventAccumulator(str(run / "tb" / node))
        acc.Reload()
        tags = {"train_loss", "train_score", "train_lr", "test_score", "test_loss"}
        edges = {f"{kind}/{edge}" for kind in ("edge_term", "edge_weight", "edge_loss")
                 for edge in ("labels", "b" if node == "a" else "a")}  # fmt: skip
        assert set(acc.Tags()["scalars"]) == tags | edges
        mine = [r for r in rows if r["node"] == node]
        got = [(s.step, s.value) for s in acc.Scalars("test_score")]
        assert got == [(r["epoch"] + 1, pytest.approx(r["val_top1"])) for r in mine]
        loss = [s.value for s in acc.Scalars("train_loss")]
        assert loss == [pytest.approx(r["train_loss"], rel=1e-6) for r in mine]


def _epochs_logged(run: Path) -> int:
    path = run / "metrics.jsonl"
    if not path.exists():
        return 0
    return len(
        {json.loads(line)["epoch"] for line in path.read_text().splitlines() if line.strip()}
    )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", "sigint"])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path: Path, how: str) -> None:
    data = tiny_spec(train_size=1024, epochs=4)  # 64 steps per epoch
    data["nodes"]["a"]["model"]["type"] = "marked_cnn"
    spec = write(tmp_path, data)
    whole = tmp_path / "whole"
    res = ktg("train", spec, "--run-dir", whole, "--no-progress", *PLUGIN, cwd=tmp_path)
    assert res.returncode == 0, res.stderr

    cut, mark = tmp_path / "cut", tmp_path / "in-epoch-3"
    proc = start_ktg_marked(
        tmp_path,
        mark,
        2 * 64 + 5,  # the fifth batch of the third epoch
        *("train", spec, "--run-dir", cut, "--no-progress"),
    )
    proc.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGINT)
    release(mark, proc, STOPPING if how == "sigint" else "")
    _, err = proc.communicate(timeout=120)
    if how == "sigint":
        assert proc.returncode == 130, err
        assert f"ktg train --resume {cut}" in err
        state = ckpt.load(cut / "last.pt")
        assert (state["epoch"], state["step"] > 0) == (2, True), "saved mid-epoch"
    else:
        assert proc.returncode == -signal.SIGKILL

    res = ktg("train", "--resume", cut, "--no-progress", *PLUGIN, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "continuing at epoch" in res.stderr
    assert_same_states(final_state(whole), final_state(cut))
    assert untimed(read_metrics(whole / "metrics.jsonl")) == untimed(
        read_metrics(cut / "metrics.jsonl")
    )
    for node in ("a", "b"):
        best_whole = ckpt.load(whole / "best" / f"{node}.pt")
        best_cut = ckpt.load(cut / "best" / f"{node}.pt")
        assert best_whole["epoch"] == best_cut["epoch"]
        for k, v in best_whole["state_dict"].items():
            assert torch.equal(v, best_cut["state_dict"][k])


def test_existing_run_dir_is_refused(tmp_path: Path, cli) -> None:
    spec = write(tmp_path, tiny_spec(epochs=1))
    run = tmp_path / "run"
    assert cli("train", spec, "--run-dir", run, "--no-progress")[0] == 0
    before = (run / "last.pt").read_bytes()
    code, _, err = cli("train", spec, "--run-dir", run, "--no-progress")
    assert code == 1 and "already holds a run" in err and "--resume" in err
    assert (run / "last.pt").read_bytes() == before


@pytest.mark.slow
def test_corrupt_and_foreign_last_pt(tmp_path: Path, cli) -> None:
    spec = write(tmp_path, tiny_spec(epochs=1))
    run = tmp_path / "run"
    assert cli("train", spec, "--run-dir", run, "--no-progress")[0] == 0
    last = run / "last.pt"
    last.write_bytes(b"this is not a checkpoint")
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 1 and "corrupt" in err and "Traceback" not in err
    assert last.read_bytes() == b"this is not a checkpoint"

    other = tmp_path / "other"
    data = tiny_spec(epochs=1)
    data["seed"] = 8
    assert (
        cli("train", write(tmp_path, data, "other.yaml"), "--run-dir", other, "--no-progress")[0]
        == 0
    )
    foreign = (other / "last.pt").read_bytes()
    last.write_bytes(foreign)
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 1 and "belongs to another run" in err
    assert last.read_bytes() == foreign

    # a checkpoint that would build an arbitrary object is refused, not run
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "ktg-run", "obj": Path("x")}, pickled)
    with pytest.raises(KtgRuntimeError, match=r"besides weights.*never runs code"):
        ckpt.load(pickled)


def test_resume_needs_a_run_directory(tmp_path: Path, cli) -> None:
    code, _, err = cli("train", "--resume", tmp_path)
    assert code == 2 and "not a run directory" in err
    code, _, err = cli("train", "--resume", tmp_path, "--set", "train.epochs=3")
    assert code == 2 and "would change what it trains" in err
    code, _, err = cli("train", tmp_path / "spec.yaml", "--resume", tmp_path)
    assert code == 2 and "give the run directory alone" in err
    code, _, err = cli("train", "--resume", tmp_path, "--run-dir", tmp_path / "x")
    assert code == 2 and "give the run directory alone" in err
    code, _, err = cli("train")
    assert code == 2 and "needs a SPEC" in err


@pytest.mark.slow
def test_disk_full_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(write(tmp_path, tiny_spec(epochs=3)))
    run = tmp_path / "run"
    trainer = Recipe(spec, run, progress=False)
    trainer.setup()
    real_save = torch.save

    def on_epoch(epoch: int, rows: dict[str, Any]) -> None:
        if epoch == 0:

            def full(obj: Any, f: Any, *a: Any, **k: Any) -> None:
                real_save(obj, f, *a, **k)  # a partial write, then the disk is full
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(torch, "save", full)

    trainer.hooks.append(on_epoch)
    with pytest.raises(KtgRuntimeError, match=r"No space left on device.*unchanged"):
        trainer.train()
    trainer.cleanup()
    state = ckpt.load(run / "last.pt")
    assert state["epoch"] == 1  # the checkpoint of epoch 1 is intact
    assert not [p for p in run.rglob("*.tmp")], "no temporary file left behind"


def test_nan_stops_with_node_and_epoch_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, tiny_spec(epochs=3)))
    run = tmp_path / "run"
    trainer = Recipe(spec, run, progress=False)
    trainer.setup()

    def poison(epoch: int, rows: dict[str, Any]) -> None:
        if epoch == 0:
            with torch.no_grad():
                for p in trainer.program.nodes["b"].model.parameters():
                    p.fill_(float("nan"))

    trainer.hooks.append(poison)
    with pytest.raises(KtgRuntimeError) as exc:
        trainer.train()
    trainer.cleanup()
    assert "'b'" in str(exc.value) and "epoch 2 of 3" in str(exc.value)
    assert "last good checkpoint is kept" in str(exc.value)
    assert ckpt.load(run / "last.pt")["epoch"] == 1


def test_bad_overrides_get_validate_messages(tmp_path: Path, cli) -> None:
    spec = write(tmp_path, tiny_spec())
    code, _, err = cli("train", spec, "--set", "train.epochz=3", "--no-progress")
    assert code == 1 and "unknown key 'epochz' (did you mean 'epochs'?)" in err
    code, _, err = cli("train", spec, "--set", "train.epochs=-1", "--no-progress")
    assert code == 1 and "train.epochs: must be >= 1, got -1" in err


def test_missing_dataset_names_where_it_looked(tmp_path: Path, cli) -> None:
    data = tiny_spec()
    data["data"] = {"dataset": "cifar10", "root": str(tmp_path / "nowhere")}
    code, _, err = cli("train", write(tmp_path, data), "--run-dir", tmp_path / "r", "--no-progress")
    assert code == 1 and "cifar-10-batches-py" in err and "download: true" in err
    assert "Traceback" not in err


def test_frozen_teacher_loads_a_trained_checkpoint(tmp_path: Path, cli) -> None:
    pre = tiny_spec(epochs=1)
    pre["nodes"] = {"t": {"model": {"type": "small_cnn", "width": 8}}}
    pre["gate_matrix"] = [["through"]]
    assert (
        cli(
            "train",
            write(tmp_path, pre, "pre.yaml"),
            "--run-dir",
            tmp_path / "pre",
            "--no-progress",
        )[0]
        == 0
    )
    teacher_file = tmp_path / "pre" / "best" / "t.pt"

    kd = tiny_spec(epochs=1)
    kd["nodes"] = {
        "s": {"model": {"type": "small_cnn", "width": 4}},
        "t": {
            "model": {"type": "small_cnn", "width": 8},
            "frozen": True,
            "checkpoint": str(teacher_file),
        },
    }
    kd["gate_matrix"] = [["through", "through"], ["cutoff", "cutoff"]]
    spec = load_spec(write(tmp_path, kd, "kd.yaml"))
    trainer = Recipe(spec, tmp_path / "kd", progress=False)
    trainer.setup()
    teacher = trainer.program.nodes["t"]
    saved = ckpt.load(teacher_file)["state_dict"]
    for k, v in teacher.model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    trainer.train()
    trainer.cleanup()
    for k, v in teacher.model.state_dict().items():
        assert torch.equal(v, saved[k]), f"the frozen teacher changed: {k}"

    # a checkpoint of another architecture: the node and the keys are named
    kd["nodes"]["t"]["model"] = {"type": "small_cnn", "width": 16}
    code, _, err = cli(
        "train", write(tmp_path, kd, "kd2.yaml"), "--run-dir", tmp_path / "kd2", "--no-progress"
    )
    assert code == 1
    assert "does not fit node 't'" in err and "shape mismatch" in err


def test_teacher_checkpoint_missing(tmp_path: Path, cli) -> None:
    kd = tiny_spec(epochs=1)
    kd["nodes"]["b"] = {
        "model": {"type": "small_cnn", "width": 4},
        "frozen": True,
        "checkpoint": str(tmp_path / "nope.pt"),
    }
    kd["gate_matrix"] = [["through", "through"], ["cutoff", "cutoff"]]
    code, _, err = cli("train", write(tmp_path, kd), "--run-dir", tmp_path / "r", "--no-progress")
    assert code == 1 and "checkpoint of node 'b'" in err and "does not exist" in err


def test_files_are_written_with_normal_permissions(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, tiny_spec(epochs=1)))
    trainer = Recipe(spec, tmp_path / "run", progress=False)
    trainer.setup()
    trainer.train()
    trainer.cleanup()
    mode = (tmp_path / "run" / "last.pt").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


@pytest.mark.slow
def test_compiled_models_train_evaluate_and_checkpoint(tmp_path: Path) -> None:
    data = tiny_spec(epochs=2, compile="on")
    data["nodes"] = {
        "a": {"model": {"type": "small_cnn", "width": 4}},
        "b": {"model": {"type": "small_cnn", "width": 4}},
    }
    spec = load_spec(write(tmp_path, data))
    trainer = Recipe(spec, tmp_path / "run", progress=False)
    trainer.setup()
    result = trainer.train()
    trainer.cleanup()
    assert result.epochs_done == 2
    assert all(row["val_top1"] is not None for row in result.last.values())
    # compiled in place: checkpoints keep the plain model's keys and load into one
    state = ckpt.load(tmp_path / "run" / "best" / "a.pt")["state_dict"]
    assert not any(k.startswith("_orig_mod") for k in state)
    data["train"]["compile"] = "off"
    plain = Recipe(
        load_spec(write(tmp_path, data, "plain.yaml")), tmp_path / "plain", progress=False
    )
    plain.setup()
    node = plain.program.nodes["a"]
    ckpt.load_node_weights(node, tmp_path / "run" / "best" / "a.pt")
    for k, v in node.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    plain.cleanup()


def test_ctrl_c_during_the_last_batch_stops_at_the_epoch_end(tmp_path: Path) -> None:
    data = tiny_spec(train_size=16, epochs=4)  # one batch per epoch
    spec = load_spec(write(tmp_path, data))
    trainer = Recipe(spec, tmp_path / "run", progress=False)
    trainer.setup()
    trainer.hooks.append(
        lambda epoch, rows: os.kill(os.getpid(), signal.SIGINT) if epoch == 0 else None
    )
    result = trainer.train()
    trainer.cleanup()
    assert result.interrupted and result.epochs_done == 1
    state = ckpt.load(tmp_path / "run" / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 0)


def test_ctrl_c_after_a_nan_keeps_the_good_checkpoint(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, tiny_spec(epochs=3)))
    trainer = Recipe(spec, tmp_path / "run", progress=False)
    trainer.setup()
    real_step = trainer.engine.train_step

    def step(x: torch.Tensor, y: torch.Tensor, epoch: int, i: int | None = None) -> Any:
        if epoch == 1 and i == 0:
            with torch.no_grad():
                for p in trainer.program.nodes["a"].model.parameters():
                    p.fill_(float("nan"))
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(x, y, epoch, i)

    trainer.engine.train_step = step  # type: ignore[method-assign]
    with pytest.raises(KtgRuntimeError, match=r"'a'.*epoch 2 of 3"):
        trainer.train()
    trainer.cleanup()
    state = ckpt.load(tmp_path / "run" / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 0), "the end-of-epoch-0 checkpoint is kept"


@pytest.mark.slow
def test_run_directories_are_claimed_and_cleaned_up(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path, tiny_spec(epochs=1))
    # two runs in the same second get two directories
    assert cli("train", spec, "--no-progress")[0] == 0
    assert cli("train", spec, "--no-progress")[0] == 0
    runs = sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir())
    assert len([r for r in runs if r != "latest"]) == 2
    # a user's own file named latest is never replaced
    (tmp_path / "latest").write_text("my notes")
    assert cli("train", spec, "--no-progress", "--run-dir", tmp_path / "exp1")[0] == 0
    assert (tmp_path / "latest").read_text() == "my notes"
    # a run that dies before its first checkpoint leaves no directory behind
    code, _, err = cli(
        "train",
        spec,
        "--no-progress",
        "--run-dir",
        tmp_path / "dead",
        "--set",
        "defaults.optimizer.lr=1e30",
    )
    assert code == 1 and "NaN" in err
    assert not (tmp_path / "dead").exists()
    # a run directory that is a file, or cannot be made
    (tmp_path / "afile").write_text("x")
    code, _, err = cli("train", spec, "--no-progress", "--run-dir", tmp_path / "afile")
    assert code == 1 and "is a file" in err and "Traceback" not in err
    code, _, err = cli("train", spec, "--no-progress", "--run-dir", tmp_path / "afile" / "sub")
    assert code == 1 and "cannot create" in err


def test_resuming_a_finished_run_does_nothing(tmp_path: Path, cli) -> None:
    spec = write(tmp_path, tiny_spec(epochs=1))
    run = tmp_path / "run"
    assert cli("train", spec, "--run-dir", run, "--no-progress")[0] == 0
    before = (run / "last.pt").read_bytes()
    code, _, err = cli("train", "--resume", run, "--no-progress")
    assert code == 0 and "already complete" in err
    assert (run / "last.pt").read_bytes() == before
