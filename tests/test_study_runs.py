"""``ktg study`` end to end on tiny synthetic specs (a run takes about a second): the tables
against the runs' own metrics.jsonl, the pictures, a rerun that trains nothing, a study killed
with SIGKILL and continued, ``--jobs 2`` from a working folder holding a ``yaml.py``, Ctrl-C
of a study with worker processes, and a run that fails while the study goes on. Every wait
is on an event (a file appearing), never a sleep of a guessed length; a run that a test stops
or kills is held at that event (the test plugin's ``marked_cnn``) until the test has acted, so a
busy machine that keeps the test from running for seconds cannot let the run finish first."""

from __future__ import annotations

import copy
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, STOPPING, release, write_spec

pytestmark = pytest.mark.slow

PLUGINS = ROOT / "tests" / "plugins"
PNG = b"\x89PNG\r\n\x1a\n"
PLUGIN = ("--plugin", "ktg_test_plugin")  # marked_cnn


def spec(
    name: str, peers: bool, train_size: int = 128, epochs: int = 2, model: str = "small_cnn"
) -> dict[str, Any]:
    """``model``: ``marked_cnn`` (the test plugin) holds the run at the test's mark."""
    gate = "through" if peers else "cutoff"
    return {
        "version": 1,
        "name": name,
        "seed": 11,  # overridden by each run's seed
        "data": {
            "dataset": {
                "type": "synthetic",
                "num_classes": 4,
                "image_size": 8,
                "train_size": train_size,
                "val_size": 64,
            },
            "batch_size": 16,
        },
        "train": {"epochs": epochs, "precision": "fp32", "device": "cpu"},
        "defaults": {"optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9}},
        "nodes": {
            "a": {"model": {"type": model, "width": 4}},
            "b": {"model": {"type": "small_cnn", "width": 4}},
        },
        "gate_matrix": [["through", gate], [gate, "through"]],
    }


def spec_files(folder: Path, marked: tuple[str, ...] = (), **kw: Any) -> list[Path]:
    """ind.yaml and dml.yaml; those named in ``marked`` train node a as ``marked_cnn``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_spec(
            folder,
            spec(
                name,
                peers=name == "dml",
                model="marked_cnn" if name in marked else "small_cnn",
                **kw,
            ),
            f"{name}.yaml",
        )
        for name in ("ind", "dml")
    ]


def env() -> dict[str, str]:
    """This checkout's ktg_dsl first (not whichever one is installed), and the test plugin."""
    path = os.pathsep.join([str(ROOT), str(PLUGINS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def _ctrl_c_reaches_it() -> None:
    """In the child: Ctrl-C's default, even when this test runs in a background job of a
    script (`cmd &`), which starts with SIGINT ignored and would pass that on to ktg."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ktg_study(
    *args: Any, cwd: Path, mark: Path | None = None, after: int = 0
) -> subprocess.Popen[str]:
    """``ktg study ARGS``; with ``mark``, every ``marked_cnn`` of it (in this process or in a
    worker) writes ``mark`` at its ``after``-th training forward and waits there until
    ``release(mark)`` (tests/conftest.py)."""
    held = {"KTG_TEST_MARK": str(mark), "KTG_TEST_MARK_AFTER": str(after)} if mark else {}
    return subprocess.Popen(
        [sys.executable, "-m", "ktg_dsl.cli", "study", *map(str, args)],
        cwd=cwd,
        env={**env(), **held},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_reaches_it,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for(
    predicate: Callable[[], bool], proc: subprocess.Popen[str] | None, timeout: float = 300
) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the study ended early: {proc.communicate()}")
        time.sleep(0.02)  # polling for the event, not waiting for a guess
    if proc is not None:
        proc.kill()
    raise AssertionError("timed out")


def finished(out: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((out / "study.json").read_text())["finished"])
    except (OSError, ValueError, KeyError):
        return {}


def csv_rows(
    path: Path, drop: tuple[str, ...] = ("seconds_mean", "digest")
) -> list[dict[str, str]]:
    with path.open() as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def run_files(run: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(run)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted study of ind and dml over seeds 0 and 1 (in a process of its own, as
    the interrupted one runs)."""
    folder = tmp_path_factory.mktemp("reference")
    files = spec_files(folder)
    code, out, err = finish(ktg_study(*files, "--seeds", "2", "-o", folder / "study", cwd=folder))
    assert code == 0, err
    (folder / "stdout.txt").write_text(out)
    return folder / "study"


def test_a_study_end_to_end(reference: Path, cli: Any) -> None:
    manifest = json.loads((reference / "study.json").read_text())
    assert len(manifest["finished"]) == 4 and manifest["seeds"] == [0, 1]
    printed = (reference.parent / "stdout.txt").read_text()
    assert printed == (reference / "results.md").read_text()
    # results.csv against the runs' own metrics.jsonl
    folders = {e["name"]: e["name"] + "-" + e["digest"][:8] for e in manifest["specs"]}
    for row in csv_rows(reference / "results.csv"):
        if row["node"] == "graph mean":
            continue
        best, last = [], []
        for seed in (0, 1):
            lines = (
                reference / folders[row["spec"]] / f"seed-{seed}" / "metrics.jsonl"
            ).read_text()
            mine = [
                json.loads(x) for x in lines.splitlines() if json.loads(x)["node"] == row["node"]
            ]
            assert len(mine) == 2
            best.append(max(r["val_top1"] for r in mine))
            last.append(mine[-1]["val_top1"])
        assert float(row["best_mean"]) == pytest.approx(statistics.fmean(best))
        assert float(row["best_std"]) == pytest.approx(statistics.stdev(best))
        assert float(row["last_mean"]) == pytest.approx(statistics.fmean(last))
        assert (row["n"], row["split"]) == ("2", "val")
    data = json.loads((reference / "results.json").read_text())
    assert data["baseline"] == "ind" and {c["node"] for c in data["comparisons"]} == {"a", "b"}
    for name in ("curves", "final"):
        assert ET.fromstring((reference / f"{name}.svg").read_bytes()).tag.endswith("svg")
        assert (reference / f"{name}.png").read_bytes()[:8] == PNG
    # ktg plot on one of its runs
    run = reference / folders["dml"] / "seed-0"
    code, _, err = cli("plot", run)
    assert code == 0, err
    assert (run / "curves.png").read_bytes()[:8] == PNG


def test_a_rerun_trains_nothing(reference: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(reference.parent)  # data.root resolves as it did: the same identities
    files = [reference.parent / "ind.yaml", reference.parent / "dml.yaml"]
    runs = sorted(reference.glob("*/seed-*/"))
    before = {str(r): run_files(r) for r in runs}
    code, out, err = cli("study", *files, "--seeds", "2", "-o", reference, "--no-pictures")
    assert code == 0, err
    assert "4 finished before, 0 to resume, 0 to train" in err
    assert {str(r): run_files(r) for r in runs} == before
    code, summary, _ = cli("study", "--summary", reference)
    assert code == 0 and summary == out


def test_a_killed_study_continues_and_loses_no_run(tmp_path: Path, reference: Path) -> None:
    files = spec_files(tmp_path, marked=("dml",))
    out = tmp_path / "study"
    mark = tmp_path / "in-dml-seed-0"  # the third run, held in its second epoch (8 steps each)
    args = (*files, "--seeds", "2", "-o", out, "--no-pictures", *PLUGIN)
    proc = ktg_study(*args, cwd=tmp_path, mark=mark, after=8 + 1)
    wait_for(mark.exists, proc)
    done = finished(out)
    proc.send_signal(signal.SIGKILL)  # the held run is in the study's own process: gone too
    proc.wait()
    assert len(done) == 2, done  # ind's two runs; dml seed 0 has its first epoch's last.pt
    kept = {key: run_files(out / key) for key in done}
    code, _, err = finish(ktg_study(*args, cwd=tmp_path))
    assert code == 0, err
    assert "2 finished before, 1 to resume, 1 to train" in err
    assert {key: run_files(out / key) for key in done} == kept, "a finished run was trained again"
    assert csv_rows(out / "results.csv") == csv_rows(reference / "results.csv")
    assert csv_rows(out / "comparisons.csv") == csv_rows(reference / "comparisons.csv")


def test_jobs_from_a_folder_with_a_yaml_py(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = spec_files(tmp_path / "specs")
    (tmp_path / "yaml.py").write_text("raise ImportError('the working folder was imported')\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("study", *files, "--seeds", "0,1", "--jobs", "2", "-o", "s", "--no-pictures")
    assert code == 0, err
    assert "2 at a time" in err and err.count("best val top-1") == 4
    logs = sorted((tmp_path / "s").glob("*/seed-*.log"))
    assert len(logs) == 4 and all('"status": "done"' in p.read_text() for p in logs)
    manifest = json.loads((tmp_path / "s" / "study.json").read_text())
    assert len(manifest["finished"]) == 4
    assert [r["n"] for r in csv_rows(tmp_path / "s" / "results.csv")] == ["2"] * 6


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_stopping_a_study_stops_its_workers_and_leaves_resumable_runs(
    tmp_path: Path, how: str
) -> None:
    """Ctrl-C: the study asks each worker to stop after its batch and save, waits, exits 130.
    SIGKILL: the workers see their stdin close and do the same on their own. Each worker's run
    is held in its second epoch (after its first last.pt) until both have taken the stop."""
    files = spec_files(tmp_path, marked=("ind", "dml"), epochs=3)  # 8 steps an epoch
    out = tmp_path / "study"
    mark = tmp_path / "in-epoch-2"  # both workers hold at it (they inherit the environment)
    args = (*files, "--seeds", "1", "--jobs", "2", "-o", out, "--no-pictures", *PLUGIN)
    proc = ktg_study(*args, cwd=tmp_path, mark=mark, after=8 + 1)
    try:
        # once both runs have saved their first epoch, neither can get past its hold
        wait_for(lambda: mark.exists() and len(list(out.glob("*/seed-0/last.pt"))) == 2, proc)
        logs = sorted(out.glob("*/seed-0.log"))
        if how == "sigint":
            proc.send_signal(signal.SIGINT)
        else:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        # a worker prints that it took the stop (into its log) at its own pace: then go on
        wait_for(
            lambda: all(STOPPING in p.read_text() for p in logs), proc if how == "sigint" else None
        )
    finally:
        release(mark)  # a failed test leaves no worker held either
    assert len(logs) == 2
    if how == "sigint":
        code, _, err = finish(proc, timeout=180)
        assert code == 130, err
        assert "study interrupted" in err
    else:
        wait_for(lambda: all("ktg-study-outcome" in p.read_text() for p in logs), proc=None)
    assert not finished(out), "a run finished though it was stopped"
    for log in logs:
        assert '"status": "interrupted"' in log.read_text()
        assert (log.parent / "seed-0" / "last.pt").exists()
    code, _, err = finish(ktg_study(*args, cwd=tmp_path))
    assert code == 0, err
    assert "2 to resume, 0 to train" in err
    assert len(finished(out)) == 2
    for metrics in out.glob("*/seed-0/metrics.jsonl"):
        epochs = [json.loads(x)["epoch"] for x in metrics.read_text().splitlines()]
        assert epochs == [e for e in range(3) for _ in "ab"]  # each epoch once, for both nodes


def test_a_failed_run_is_reported_and_the_study_goes_on(tmp_path: Path, cli: Any) -> None:
    good = write_spec(tmp_path, spec("ok", peers=True, epochs=1), "ok.yaml")
    bad = copy.deepcopy(spec("nan", peers=True, epochs=1))
    bad["defaults"]["optimizer"]["lr"] = 1.0e30
    nan = write_spec(tmp_path, bad, "nan.yaml")
    out = tmp_path / "s"
    code, stdout, err = cli("study", good, nan, "--seeds", "1", "-o", out, "--no-pictures")
    assert code == 1
    assert "[failed] nan seed 0: the loss of nodes" in err and "NaN or infinite" in err
    assert "1 run did not finish" in err
    assert "Not finished, left out: nan-" in stdout
    assert len(finished(out)) == 1 and (out / "results.csv").exists()
