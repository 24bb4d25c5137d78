"""``ktg train --nproc N`` from the command line, on CPU with gloo: the same run as one process
(weights, metrics, best checkpoints), a rank killed mid-epoch restarted from the last manifest
and ending as an uninterrupted run, a rank that fails ending every rank with its message, Ctrl-C
leaving a resumable run, and every mesh that cannot work refused before anything starts."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ktg_dsl.run import checkpoint as ckpt
from ktg_dsl.run.manifest import node_states

from .conftest import STOPPING, release, run_ktg, start_ktg_marked, write_spec
from .reportfiles import page_data


def spec_data(epochs: int = 3, **distributed: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "dist",
        "seed": 3,
        "data": {
            "dataset": {"type": "synthetic", "num_classes": 5, "image_size": 8, "train_size": 256},
            "batch_size": 16,
        },
        "train": {
            "epochs": epochs,
            "precision": "fp32",
            "device": "cpu",
            "distributed": distributed,
        },
        "defaults": {"optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9}},
        "nodes": {
            "a": {"model": {"type": "marked_cnn", "width": 4}, "taps": {"f3": "block3"}},
            "b": {"model": {"type": "small_cnn", "width": 4}, "taps": {"f3": "block3"}},
            "c": {"model": {"type": "small_cnn", "width": 8}},
        },
        "edges": [
            {"to": "a", "from": "labels"},
            {"to": "a", "from": "b", "gate": "positive_linear"},
            {"to": "b", "from": "labels"},
            {"to": "b", "from": "c", "gate": "correct"},
            {"to": "c", "from": "labels"},
            {"to": "c", "from": "a"},
            {"to": "b.f3", "from": "a.f3", "loss": "attention"},
        ],
    }


def ktg(*args: Any, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    return run_ktg(*args, "--plugin", "ktg_test_plugin", cwd=cwd, timeout=timeout, env=env or {})


def states(run: Path) -> dict[str, Any]:
    manifest = ckpt.load(run / "last.pt")
    return node_states(run / "last.pt", manifest, list(manifest["nodes"]))


def rows(run: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        out.append({k: v for k, v in row.items() if k not in ("epoch_time", "elapsed")})
    return out


def assert_same_run(one: Path, other: Path) -> None:
    a, b = states(one), states(other)
    assert set(a) == set(b) == {"a", "b", "c"}
    for node in a:
        for key, value in a[node]["model"].items():
            torch.testing.assert_close(value, b[node]["model"][key], rtol=2e-4, atol=2e-5)
    for ra, rb in zip(rows(one), rows(other), strict=True):
        assert (ra["epoch"], ra["node"], ra["val_top1"]) == (
            rb["epoch"],
            rb["node"],
            rb["val_top1"],
        )
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-4)
    for node in ("a", "b", "c"):
        assert (
            ckpt.load(one / "best" / f"{node}.pt")["epoch"]
            == ckpt.load(other / "best" / f"{node}.pt")["epoch"]
        )


@pytest.mark.slow
def test_two_ranks_train_as_one_process(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_data())
    one = ktg("train", spec, "--run-dir", tmp_path / "one", "--no-progress", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = ktg(
        "train", spec, "--nproc", "2", "--run-dir", tmp_path / "two", "--no-progress", "--report",
        cwd=tmp_path,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("best val top-1") == 1, "rank 0 alone prints the table"
    assert_same_run(tmp_path / "one", tmp_path / "two")
    # --report: rank 0, which writes the logs, keeps the page and the TensorBoard picture
    page = page_data((tmp_path / "two" / "report.html").read_text())["run"]
    assert page["epochs"] == [0, 1, 2] and set(page["nodes"]) == {"a", "b", "c"}
    assert (tmp_path / "two" / "tb" / "ktg.graph").is_dir()
    manifest = ckpt.load(tmp_path / "two" / "last.pt")
    assert manifest["mesh"] == {"world": 2, "groups": 2, "replicas": 1}
    # a run of two processes resumes on one: the state is per node
    more = ktg("train", "--resume", tmp_path / "two", "--no-progress", cwd=tmp_path)
    assert more.returncode == 0 and "already complete" in more.stderr


@pytest.mark.slow
def test_a_killed_rank_restarts_from_the_last_manifest(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_data())
    whole = ktg("train", spec, "--run-dir", tmp_path / "whole", "--no-progress", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    mark = tmp_path / "in-epoch-2"
    proc = start_ktg_marked(
        tmp_path,
        mark,
        16 + 5,  # epoch 2, batch 5
        *("train", spec, "--nproc", "2", "--max-restarts", "1"),
        *("--run-dir", tmp_path / "cut", "--no-progress"),
    )
    os.kill(int(mark.read_text()), signal.SIGKILL)  # the rank that trains node a
    release(mark)  # its restart neither marks nor waits
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "continuing at epoch 2" in err
    assert_same_run(tmp_path / "whole", tmp_path / "cut")


@pytest.mark.slow
def test_a_killed_rank_without_restarts_ends_with_a_message_and_a_resume_hint(
    tmp_path: Path,
) -> None:
    spec = write_spec(tmp_path, spec_data())
    mark, run = tmp_path / "in-epoch-2", tmp_path / "cut"
    proc = start_ktg_marked(
        tmp_path, mark, 16 + 5, "train", spec, "--nproc", "2", "--run-dir", run, "--no-progress"
    )
    os.kill(int(mark.read_text()), signal.SIGKILL)
    release(mark)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "lost the other ranks in a collective" in err
    assert "killed by SIGKILL" in err
    assert f"ktg train --resume {run} --nproc 2" in err
    assert "Traceback" not in err
    resumed = ktg("train", "--resume", run, "--nproc", "2", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "continuing at epoch 2" in resumed.stderr


@pytest.mark.slow
def test_a_failing_rank_ends_every_rank_without_hanging(tmp_path: Path) -> None:
    data = spec_data()
    data["nodes"]["c"]["checkpoint"] = str(tmp_path / "c.pt")  # present at validate...
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")  # ...and broken at load time
    tick = time.time()
    res = ktg(
        "train",
        write_spec(tmp_path, data),
        "--nproc",
        "2",
        "--no-progress",
        cwd=tmp_path,
        timeout=300,
    )
    assert res.returncode == 1, res.stderr
    assert "is corrupt or not a PyTorch checkpoint" in res.stderr
    assert "Traceback" not in res.stderr.split("stopped (exit code")[0][-2000:]
    assert time.time() - tick < 240


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_and_leaves_a_resumable_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_data(epochs=30))
    mark = tmp_path / "going"
    proc = start_ktg_marked(
        tmp_path,
        mark,
        40,
        *("train", spec, "--nproc", "2", "--run-dir", tmp_path / "run", "--no-progress"),
    )
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None
    while STOPPING not in proc.stdout.readline():  # a rank has the signal the launcher passed on
        assert proc.poll() is None, proc.communicate()
    time.sleep(35)  # the rank saves slowly: past torch's own 30 s before it kills ranks
    release(mark)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "forcefully" not in err and "SIGKILL" not in err, err
    assert err.count("--resume") == 1, err  # rank 0 says how to continue, once
    assert f"ktg train --resume {tmp_path / 'run'} --nproc 2" in err
    manifest = ckpt.load(tmp_path / "run" / "last.pt")
    assert 0 < manifest["epoch"] < 30
    res = ktg(
        "train",
        "--resume",
        tmp_path / "run",
        "--nproc",
        "2",
        "--no-progress",
        cwd=tmp_path,
        env={"KTG_TEST_MARK": ""},
    )
    assert res.returncode == 0, res.stderr
    assert len({r["epoch"] for r in rows(tmp_path / "run")}) == 30


@pytest.mark.slow
def test_ctrl_c_in_the_last_batch_ends_a_finished_run_as_one_process_does(
    tmp_path: Path,
) -> None:
    """The ranks agree on the stop at the end of the last epoch: the run is whole, so the
    launcher says so and exits 0 (it said 'interrupted', exit 130, over a finished run)."""
    spec = write_spec(tmp_path, spec_data(epochs=3))
    mark = tmp_path / "last-batch"
    run = tmp_path / "run"
    args = ("train", spec, "--nproc", "2", "--run-dir", run, "--no-progress")
    proc = start_ktg_marked(tmp_path, mark, 3 * 16, *args)  # the last batch of epoch 3
    proc.send_signal(signal.SIGINT)
    release(mark, proc, STOPPING)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "interrupted as the run ended: all 3 epochs are done" in err
    assert "--resume" not in err and "3 epochs in" in out
    manifest = ckpt.load(run / "last.pt")
    assert (manifest["epoch"], manifest["step"]) == (3, 0)
    assert len({r["epoch"] for r in rows(run)}) == 3


@pytest.mark.parametrize(
    ("distributed", "nproc", "words"),
    [
        ({"graph_groups": 3}, 2, "graph_groups is 3, but 2 processes with data_parallel 1 make 2"),
        ({"data_parallel": 2}, 3, "3 processes cannot hold train.distributed.data_parallel: 2"),
        ({}, 4, "4 processes are more than the 3 trained nodes x data_parallel 1"),
        ({"placement": {"a": 0, "b": 1, "zz": 0}}, 2, "placement names 'zz', which is not a node"),
        ({"placement": {"a": 0, "b": 2, "c": 0}}, 2, "puts 'b' on group 2, but there are 2 groups"),
        ({"placement": {"a": 0, "b": 0, "c": 0}}, 2, "leaves group 1 without a node"),
        ({"backend": "nccl"}, 2, "backend is nccl, which needs CUDA GPUs"),
    ],
)
def test_meshes_that_cannot_work_are_refused_before_anything_starts(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch, distributed: dict, nproc: int, words: str
) -> None:
    if distributed.get("backend") == "nccl" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    data = spec_data(**distributed)
    data["nodes"]["a"]["model"]["type"] = "small_cnn"
    code, _, err = cli("train", write_spec(tmp_path, data), "--nproc", nproc, "--no-progress")
    assert code == 2 and words in err and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists(), "nothing started"


@pytest.mark.parametrize("value", ["soon", "-1", "2.5", ""])
def test_a_grace_that_is_not_whole_seconds_is_refused_before_anything_starts(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", value)
    data = spec_data()
    data["nodes"]["a"]["model"]["type"] = "small_cnn"
    code, _, err = cli("train", write_spec(tmp_path, data), "--nproc", "2", "--no-progress")
    assert code == 2 and "Traceback" not in err, err
    assert f"sets TORCH_ELASTIC_SHUTDOWN_TIMEOUT={value!r}: expected a whole number" in err
    assert "how long the ranks get to save after Ctrl-C" in err
    assert not (tmp_path / "runs").exists(), "nothing started"


def _interrupted_in_one_process(tmp_path: Path, run: Path) -> Path:
    """A one-process run stopped by Ctrl-C in epoch 2 (its last.pt is mid-epoch)."""
    spec = write_spec(tmp_path, spec_data())
    mark = tmp_path / "mark"
    proc = start_ktg_marked(
        tmp_path, mark, 16 + 5, "train", spec, "--run-dir", run, "--no-progress"
    )
    proc.send_signal(signal.SIGINT)
    release(mark, proc, STOPPING)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert ckpt.load(run / "last.pt")["epoch"] == 1
    return spec


@pytest.mark.slow
def test_a_one_process_run_resumes_on_two_graph_groups_exactly(tmp_path: Path) -> None:
    """Node granularity: a run continues on another number of graph groups and ends as the
    uninterrupted run."""
    spec = _interrupted_in_one_process(tmp_path, tmp_path / "cut")
    whole = ktg("train", spec, "--run-dir", tmp_path / "whole", "--no-progress", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    res = ktg("train", "--resume", tmp_path / "cut", "--nproc", "2", "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "continuing at epoch 2" in res.stderr
    assert_same_run(tmp_path / "whole", tmp_path / "cut")


@pytest.mark.slow
def test_another_data_parallel_on_resume_is_refused_unless_approximate(tmp_path: Path) -> None:
    run = tmp_path / "cut"
    _interrupted_in_one_process(tmp_path, run)
    before = (run / "last.pt").read_bytes()
    args = ("--set", "train.distributed.data_parallel=2", "--nproc", "2", "--no-progress")
    res = ktg("train", "--resume", run, *args, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert "was written with data_parallel 1, and this run has 2" in res.stderr
    assert "--approximate" in res.stderr
    assert (run / "last.pt").read_bytes() == before  # nothing changed
    res = ktg("train", "--resume", run, *args, "--approximate", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert len({r["epoch"] for r in rows(run)}) == 3


def test_resume_changes_only_how_the_run_is_spread(tmp_path: Path, cli) -> None:
    code, _, err = cli("train", "--resume", tmp_path, "--set", "train.epochs=5")
    assert code == 2
    assert "--set train.epochs=5 would change what it trains" in err
    assert "train.distributed.*" in err


@pytest.mark.slow
def test_nproc_refuses_a_used_run_dir_before_anything_starts(tmp_path: Path) -> None:
    """A folder that holds something else is refused by the launcher, so that no restart of
    the group can ever take it for its own failed attempt (and clear it)."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "results.txt").write_text("thesis\n")
    spec = write_spec(tmp_path, spec_data())
    args = ("--nproc", "2", "--max-restarts", "1", "--run-dir", precious, "--no-progress")
    res = ktg("train", spec, *args, cwd=tmp_path, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "starting 2 processes" not in res.stderr
    assert "is a folder with files in it" in res.stderr
    assert (precious / "results.txt").read_text() == "thesis\n"
    assert sorted(p.name for p in precious.iterdir()) == ["results.txt"]


@pytest.mark.slow
def test_a_last_batch_smaller_than_the_replicas_is_refused(tmp_path: Path) -> None:
    data = spec_data(epochs=1, data_parallel=2)
    data["data"]["drop_last"] = False
    data["data"]["dataset"]["train_size"] = 64 + 1  # the training part's last batch: 1 sample
    res = ktg("train", write_spec(tmp_path, data), "--nproc", "2", "--no-progress", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert "fewer than the 2 replicas" in res.stderr and "drop_last: true" in res.stderr
    assert "NaN" not in res.stderr
