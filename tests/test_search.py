"""``ktg search`` on tiny data with real Optuna storages (journal files and sqlite)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import ktg_dsl
from ktg_dsl.check import parse_data
from ktg_dsl.search.space import SearchSpace

from .conftest import STOPPING, plugin_path, release, start_ktg_marked, write_spec


def search_spec(trials: int = 3, epochs: int = 2, **search: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "s",
        "seed": 1,
        "data": {
            "dataset": {
                "type": "synthetic",
                "num_classes": 4,
                "image_size": 8,
                "train_size": 128,
                "val_size": 64,
            },
            "batch_size": 32,
        },
        "train": {"epochs": epochs, "precision": "fp32", "device": "cpu"},
        "defaults": {"optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9}},
        "nodes": {
            "a": {"model": {"type": "small_cnn", "width": 4}},
            "b": {"model": {"type": "small_cnn", "width": 4}},
        },
        "edges": [
            {"to": "a", "from": "labels"},
            {"to": "b", "from": "labels"},
            {"to": "a", "from": "b", "loss": {"type": "kl", "temperature": 3.0}},
        ],
        "search": {
            "trials": trials,
            "sampler": "random",
            "pruner": "none",
            "gates": ["through", "positive_linear", "cutoff"],
            "edges": [
                {"to": "a", "from": "labels", "fixed": True},
                {"to": "b", "from": "labels", "gates": ["through"]},
            ],
            "models": {"b": [{"type": "small_cnn", "width": 4}, {"type": "small_cnn", "width": 8}]},
            **search,
        },
    }


write = write_spec


def study_of(storage: str, name: str = "s") -> Any:
    if "://" not in storage:
        backend = optuna.storages.journal.JournalFileBackend(storage)
        return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))
    return optuna.load_study(study_name=name, storage=storage)


def ktg(*args: Any, cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ktg_dsl.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        **kw,
    )


def test_search_space_and_concrete_specs() -> None:
    spec, _ = parse_data(
        search_spec(params=[{"path": "defaults.loss.temperature", "low": 1.0, "high": 4.0}])
    )
    assert spec is not None
    space = SearchSpace(spec)
    keys = {(r, s): c for r, s, c in space.edges}
    assert keys[("a", "labels")] is None  # fixed
    assert [str(g) for g in keys[("b", "labels")] or []] == ["through"]
    assert [str(g) for g in keys[("a", "b")] or []] == ["through", "positive_linear", "cutoff"]
    assert len(space.edges) == 4  # a<-labels, a<-b, b<-labels, b<-a

    trial = optuna.trial.FixedTrial(
        {
            "gate:a<-b": "positive_linear",
            "gate:b<-labels": "through",
            "gate:b<-a": "cutoff",
            "model:b": "small_cnn(width: 8)",
            "param:defaults.loss.temperature": 2.5,
        }
    )
    sampled = space.suggest(trial)
    data = space.concrete(sampled)
    concrete, issues = parse_data(data)
    assert concrete is not None and not issues
    assert "search" not in data
    edges = {(e["to"], e["from"]): e for e in data["edges"]}
    assert set(edges) == {("a", "labels"), ("a", "b"), ("b", "labels")}  # cutoff: not written
    assert edges[("a", "b")]["gate"] == "positive_linear"
    assert edges[("a", "b")]["loss"] == {"type": "kl", "temperature": 3.0}  # kept from the spec
    assert data["nodes"]["b"]["model"] == {"type": "small_cnn", "width": 8}
    assert data["defaults"]["loss"] == {"type": "kl", "temperature": 2.5}
    assert not ktg_dsl.validate_spec(concrete)


@pytest.mark.slow
def test_search_runs_continues_exports_and_summarises(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path, search_spec(trials=3))
    code, out, err = cli("search", spec, "--trials", "2")
    assert code == 0, err
    journal = tmp_path / "runs" / "s" / "search" / "study.journal"
    assert journal.exists()
    study = study_of(str(journal))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for t in study.trials:  # each trial's run directory is kept
        run = Path(t.user_attrs["run_dir"])
        assert (tmp_path / run / "metrics.jsonl").exists()
    # running again continues the same study, up to search.trials in all
    code, _, err = cli("search", spec)
    assert code == 0, err
    assert len(study_of(str(journal)).trials) == 3
    code, out, _ = cli("search", spec)
    assert code == 0 and "already has 3 finished trials" in out

    code, out, _ = cli("search", spec, "--summary")
    assert code == 0 and "3 complete" in out and "rows receive from columns" in out

    best = tmp_path / "best.yaml"
    code, out, err = cli("search", spec, "--export", best)
    assert code == 0, err
    exported = ktg_dsl.load_spec(best)
    assert exported.search is None
    assert cli("validate", best)[0] == 0
    assert cli("render", best, "-o", tmp_path / "best.dot")[0] == 0
    code, _, err = cli(
        "train", best, "--set", "train.epochs=1", "--run-dir", tmp_path / "retrain", "--no-progress"
    )
    assert code == 0, err
    code, _, err = cli("search", spec, "--export", tmp_path / "t1.yaml", "--trial", "1")
    assert code == 0 and "trial 1" in (tmp_path / "t1.yaml").read_text()
    code, _, err = cli("search", spec, "--export", tmp_path / "t9.yaml", "--trial", "9")
    assert code == 1 and "no trial 9" in err


@pytest.mark.slow
def test_sqlite_storage_and_two_processes_share_one_study(tmp_path: Path) -> None:
    spec = write(tmp_path, search_spec(trials=4))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    cmd = [
        sys.executable,
        "-m",
        "ktg_dsl.cli",
        "search",
        str(spec),
        "--storage",
        url,
        "--trials",
        "2",
    ]
    procs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    study = study_of(url)
    numbers = sorted(t.number for t in study.trials)
    assert numbers == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert len(pids) == 2, "both processes ran trials"
    run_dirs = [t.user_attrs["run_dir"] for t in study.trials]
    assert len(set(run_dirs)) == 4


@pytest.mark.slow
def test_jobs_runs_worker_processes(tmp_path: Path) -> None:
    spec = write(tmp_path, search_spec(trials=4))
    res = ktg("search", spec, "--jobs", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    study = study_of(str(tmp_path / "runs" / "s" / "search" / "study.journal"))
    assert len(study.trials) == 4
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2


@pytest.mark.slow
def test_pruned_trials_stop_at_once(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # a plugin pruner (registered by tests/plugins) that prunes every trial but the first at
    # its second epoch: pruned trials must stop right there, not run their 4 epochs
    data = search_spec(trials=3, epochs=4, pruner={"type": "after_first_trial", "at_epoch": 1})
    code, _, err = cli("search", write(tmp_path, data), "--plugin", "ktg_test_plugin")
    assert code == 0, err
    study = study_of(str(tmp_path / "runs" / "s" / "search" / "study.journal"))
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED], states
    assert sorted(study.trials[0].intermediate_values) == [0, 1, 2, 3]
    for t in study.trials[1:]:
        assert sorted(t.intermediate_values) == [0, 1]
        rows = (Path(t.user_attrs["run_dir"]) / "metrics.jsonl").read_text().splitlines()
        assert {yaml.safe_load(r)["epoch"] for r in rows} == {0, 1}, "stopped at once"


@pytest.mark.slow
def test_failing_trials_are_recorded_and_the_study_goes_on(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Two searches whose every trial fails, one of each kind (a sampler that mixed them would
    # pick the kinds at random: failed trials are not "tried" for Optuna's brute force).
    # b's labels edge is cut off, so b trains only through b <- a: cut off too, such a graph is
    # invalid (b never trains); open, the learning rate is so large that the loss becomes NaN.
    for name, b_from_a, reason in (
        ("invalid", "cutoff", "not a valid spec"),
        ("nan", "through", "NaN"),
    ):
        data = search_spec(trials=4)
        data["name"] = name
        data["search"]["edges"] = [
            {"to": "a", "from": "labels", "fixed": True},
            {"to": "b", "from": "labels", "gates": ["cutoff"]},
            {"to": "b", "from": "a", "gates": [b_from_a]},
        ]
        data["search"]["gates"] = ["cutoff", "through"]
        data["search"]["params"] = [
            {"path": "defaults.optimizer.lr", "low": 1e30, "high": 2e30, "step": 1e30}
        ]
        spec = write(tmp_path, data, f"{name}.yaml")
        code, _, err = cli("search", spec)
        assert code == 1 and f"no trial of study '{name}' completed" in err, err
        assert "Traceback" not in err
        study = study_of(str(tmp_path / "runs" / name / "search" / "study.journal"), name)
        assert len(study.trials) == 4, "the search went on after each failure"
        reasons = [t.user_attrs.get("fail_reason", "") for t in study.trials]
        assert all(t.state == TrialState.FAIL for t in study.trials), reasons
        assert all(reason in r for r in reasons), reasons
        if name == "invalid":
            assert all("'b'" in r and "never trains" in r for r in reasons), reasons
        code, out, _ = cli("search", spec, "--summary")
        assert "failed trials:" in out and reason in out


@pytest.mark.slow
def test_export_never_writes_over_the_spec_or_the_study(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--export`` naming the spec, the journal or the SQLite file would replace what the
    command reads (the spec, or the whole study) with one trial's spec."""
    monkeypatch.chdir(tmp_path)  # the default journal is under ./runs
    spec = write(tmp_path, search_spec(trials=1, epochs=1))
    journal = tmp_path / "runs" / "s" / "search" / "study.journal"
    database = tmp_path / "study.db"
    assert cli("search", spec)[0] == 0 and journal.stat().st_size > 0  # a study to lose
    for target, storage, what in (
        (spec, [], "is the spec"),
        (journal, [], "is the study's journal"),
        (database, ["--storage", f"sqlite:///{database}"], "is the study's database"),
    ):
        before = target.read_bytes() if target.exists() else None
        code, _, err = cli("search", spec, *storage, "--export", target)
        assert code == 2 and what in err and "writing it would replace it" in err, err
        assert (target.read_bytes() if target.exists() else None) == before


def test_unreachable_storage_is_a_clear_error(tmp_path: Path, cli) -> None:
    spec = write(tmp_path, search_spec())
    code, _, err = cli("search", spec, "--storage", "sqlite:////no/such/dir/study.db")
    assert code == 1 and "cannot open the study storage" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists(), "nothing started"


def test_spec_without_search_section(tmp_path: Path, cli) -> None:
    data = search_spec()
    del data["search"]
    code, _, err = cli("search", write(tmp_path, data))
    assert code == 2 and "no 'search:' section" in err


@pytest.mark.slow
def test_killed_worker_trial_is_failed_and_requeued(tmp_path: Path) -> None:
    data = search_spec(trials=2, epochs=8)  # killed in its second epoch, rerun whole
    data["data"]["dataset"]["train_size"] = 512  # 16 steps an epoch
    data["nodes"]["a"]["model"]["type"] = "marked_cnn"  # held at the mark until released
    spec = write(tmp_path, data)
    journal = tmp_path / "runs" / "s" / "search" / "study.journal"
    mark = tmp_path / "in-epoch-2"
    proc = start_ktg_marked(tmp_path, mark, 16 + 1, "search", spec, "--trials", "1")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    release(mark)
    study = study_of(str(journal))
    assert [t.state for t in study.trials] == [TrialState.RUNNING]
    killed = study.trials[0]

    # the same spec (a study refuses one that trains something else: issue 24, item 11)
    res = ktg(
        *("search", spec, "--trials", "1", "--plugin", "ktg_test_plugin"),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": plugin_path()},
    )
    assert "left running by a worker that died" in res.stderr
    study = study_of(str(journal))
    first = study.trials[0]
    assert first.state == TrialState.FAIL and "died" in first.user_attrs["fail_reason"]
    retried = study.trials[1]
    assert retried.params == killed.params and retried.state == TrialState.COMPLETE


@pytest.mark.slow
def test_interrupted_worker_marks_its_trial_failed(tmp_path: Path) -> None:
    data = search_spec(trials=2, epochs=30)
    data["data"]["dataset"]["train_size"] = 512  # 16 steps an epoch
    data["nodes"]["a"]["model"]["type"] = "marked_cnn"  # held at the mark until released
    spec = write(tmp_path, data)
    mark = tmp_path / "in-epoch-2"
    proc = start_ktg_marked(tmp_path, mark, 16 + 1, "search", spec)
    proc.send_signal(signal.SIGINT)
    release(mark, proc, STOPPING)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Run the same command again to continue" in err
    study = study_of(str(tmp_path / "runs" / "s" / "search" / "study.journal"))
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_storages_that_cannot_work_and_bad_arguments(tmp_path: Path, cli) -> None:
    spec = write(tmp_path, search_spec())
    code, _, err = cli("search", spec, "--storage", "sqlite://")
    assert code == 1 and "in-memory database" in err
    code, _, err = cli("search", spec, "--storage", spec)
    assert code == 1 and "not an Optuna journal file" in err and "Traceback" not in err
    (tmp_path / "afile").write_text("x")
    code, _, err = cli("search", spec, "--storage", tmp_path / "afile" / "j.journal")
    assert code == 1 and "cannot create the folder" in err
    for args in (["--trials", "0"], ["--jobs", "0"], ["--top", "-1"]):
        with pytest.raises(SystemExit) as exit_:
            cli("search", spec, *args)
        assert exit_.value.code == 2
    code, _, err = cli("search", spec, "--trial", "1")
    assert code == 2 and "--trial N goes with --export" in err


@pytest.mark.slow
def test_trial_folders_never_mix_two_studies(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path, search_spec(trials=1))
    assert cli("search", spec)[0] == 0
    assert cli("search", spec, "--storage", tmp_path / "other.journal")[0] == 0
    first = study_of(str(tmp_path / "runs" / "s" / "search" / "study.journal")).trials[0]
    second = study_of(str(tmp_path / "other.journal")).trials[0]
    assert first.user_attrs["run_dir"] != second.user_attrs["run_dir"]
    assert Path(first.user_attrs["run_dir"]).parent.name == "s"
    assert Path(second.user_attrs["run_dir"]).parent.name == "s-2"


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("search.gates", "[through, cutoff, through]", "search.gates[2]"),
        (
            "search.edges",
            "[{to: b, from: labels, gates: [cutoff, cutoff]}]",
            "search.edges[0].gates[1]",
        ),
        ("search.edges", "[{to: b, from: a, losses: [kl, dkd, kl]}]", "search.edges[0].losses[2]"),
        (
            "search.models.b",
            "[small_cnn, {type: small_cnn, width: 8}, small_cnn]",
            "search.models.b[2]",
        ),
    ],
)
def test_a_choice_listed_twice_is_an_error(
    tmp_path: Path, cli, key: str, value: str, where: str
) -> None:
    """It was accepted, and the sampler drew the repeated choice more often than the others."""
    code, _, err = cli("validate", write(tmp_path, search_spec()), "--set", f"{key}={value}")
    assert code == 1 and f"{where}: the choice '" in err and "is listed twice" in err, err
