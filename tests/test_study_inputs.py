"""What ``ktg study`` refuses before anything trains, and the study directory's rules: run
identities (digest and seed), stale spec versions, the lock, the progress lines and the worker
plumbing. Nothing here trains."""

from __future__ import annotations

import copy
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ktg_dsl.check import check_file
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.run.workers import worker_command
from ktg_dsl.study.display import Display, run_line
from ktg_dsl.study.plan import StudySpec, describe, plan_runs
from ktg_dsl.study.results import NodeRun, RunRecord
from ktg_dsl.study.runner import LOG_TAIL, Job, read_outcome
from ktg_dsl.study.session import prepare

from .conftest import small_spec, write_spec
from .test_study import fake_study

TINY = small_spec(
    "dml",
    {"a": {"model": {"type": "small_cnn", "width": 4}}, "b": {"model": "small_cnn"}},
    epochs=2,
    gate_matrix=[["through", "through"], ["through", "through"]],
)


def tiny(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(TINY)
    for path, value in changes.items():
        *parents, last = path.split("__")
        where = data
        for p in parents:
            where = where[p]
        where[last] = value
    return data


@pytest.fixture
def specs(tmp_path: Path) -> dict[str, Path]:
    ind = tiny(name="ind", gate_matrix=[["through", "cutoff"], ["cutoff", "through"]])
    return {
        "dml": write_spec(tmp_path, tiny(), "dml.yaml"),
        "ind": write_spec(tmp_path, ind, "ind.yaml"),
        "bad": write_spec(
            tmp_path,
            tiny(name="bad", train__epochs=0, nodes={"a": {"model": "resnet23"}}),
            "bad.yaml",
        ),
        "other_data": write_spec(
            tmp_path, tiny(name="other", data__dataset__train_size=96), "other.yaml"
        ),
        "test_split": write_spec(tmp_path, tiny(name="tested", data__split="test"), "test.yaml"),
        "same_name": write_spec(tmp_path, tiny(train__epochs=3), "dml2.yaml"),
    }


def study_spec(path: Path, *overrides: str) -> StudySpec:
    report = check_file(path, overrides)
    assert report.ok and report.spec is not None and report.graph is not None
    return describe(path, report.spec, report.graph)


@pytest.mark.parametrize(
    ("names", "extra", "code", "message"),
    [
        (["dml", "bad"], (), 1, "train.epochs: must be >= 1, got 0"),
        (["dml", "other_data"], (), 1, "train on different data"),
        (["dml", "test_split"], (), 1, "split test"),
        (["dml", "same_name"], (), 1, "two specs are named dml"),
        (["dml"], ("--seeds", "0"), 2, "gives no seed"),
        (["dml"], ("--seeds", "1,2,1"), 2, "repeats 1"),
        (["dml", "ind"], ("--baseline", "kd"), 2, "--baseline kd: no spec"),
        (["dml", "ind"], ("--node", "c"), 2, "--node c: not a node of dml, ind"),
        (["dml"], ("--summary", "x"), 2, "give no SPEC"),
        ([], (), 2, "needs one or more SPECs"),
    ],
)
def test_bad_inputs_are_refused_before_training(
    tmp_path: Path, cli: Any, specs: dict[str, Path], names: list[str], extra: tuple, code: int,
    message: str,
) -> None:  # fmt: skip
    out = tmp_path / "studies" / "x"
    got, _, err = cli("study", *(specs[n] for n in names), "-o", out, *extra)
    assert (got, message in err) == (code, True), err
    assert not out.exists()


def test_every_invalid_spec_is_reported(tmp_path: Path, cli: Any, specs: dict[str, Path]) -> None:
    worse = write_spec(tmp_path, tiny(name="worse", data__batch_size=0), "worse.yaml")
    code, _, err = cli("study", specs["bad"], worse, "-o", tmp_path / "s")
    assert code == 1
    assert "bad.yaml" in err and "worse.yaml" in err and "data.batch_size" in err


def test_a_spec_can_be_added_to_a_study_its_finished_runs_kept(tmp_path: Path) -> None:
    """docs/results.md: 'to add a spec to the comparison, rerun the command with it'."""
    from ktg_dsl.study.manifest import StudyDir, StudyEntry, open_study

    folder = fake_study(tmp_path / "s")
    old = StudyDir(folder).read()
    extra = StudyEntry("ind", "f" * 16, "ind.yaml", "digits", "test", ["a"])
    got = open_study(folder, "s", [*old.specs, extra], [0, 1, 2])
    assert [e.name for e in got.specs] == [*(e.name for e in old.specs), "ind"]
    assert got.finished == old.finished and got.finished
    with pytest.raises(Exception, match=r"without kd\. Choose another -o"):
        open_study(folder, "s", [e for e in old.specs if e.name == "dml"] + [extra], [0])


def test_a_folder_that_is_not_this_study_is_refused(
    tmp_path: Path, cli: Any, specs: dict[str, Path]
) -> None:
    run = tmp_path / "a-run"
    run.mkdir()
    (run / "spec.resolved.yaml").write_text("name: x\n")
    code, _, err = cli("study", specs["dml"], "-o", run)
    assert code == 2 and "not a study directory: it holds files but no study.json" in err
    other = fake_study(tmp_path / "other")
    before = (other / "study.json").read_bytes()
    code, _, err = cli("study", specs["dml"], specs["ind"], "-o", other)
    assert code == 2 and "holds another study (of dml, kd)" in err
    assert (other / "study.json").read_bytes() == before
    code, _, err = cli("study", specs["dml"], "-o", specs["ind"])
    assert code == 2 and "is a file" in err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "study.json").write_text("{not json")
    code, _, err = cli("study", "--summary", tmp_path / "broken")
    assert code == 2 and "not a ktg study manifest" in err
    code, _, err = cli("study", "--summary", tmp_path / "nowhere")
    assert code == 2 and "not a study directory (no such folder)" in err


def test_the_digest_is_the_spec_without_its_seed(specs: dict[str, Path]) -> None:
    base = study_spec(specs["dml"]).entry
    assert study_spec(specs["dml"], "seed=3").entry.digest == base.digest
    assert study_spec(specs["dml"], "train.out_dir=elsewhere").entry.digest == base.digest
    changed = study_spec(specs["dml"], "defaults.optimizer.lr=0.01").entry
    assert changed.digest != base.digest
    assert base.folder == f"dml-{base.digest[:8]}" and base.split == "val"


def test_a_changed_spec_gets_a_new_folder_and_the_old_is_stale(
    tmp_path: Path, specs: dict[str, Path]
) -> None:
    out = tmp_path / "study"
    first = prepare(out, "study", [study_spec(specs["dml"]), study_spec(specs["ind"])], [0, 1])
    with pytest.raises(KtgRuntimeError, match="in use by a running ktg study"):
        prepare(out, "study", [study_spec(specs["dml"]), study_spec(specs["ind"])], [0, 1])
    first.study.release()
    old = first.manifest.entry("dml").folder
    # a finished run of the old version, and one of the unchanged spec (a finished run whose
    # folder is gone is trained again: see test_hunt_study.py)
    first.study.mark_finished(first.manifest, f"{old}/seed-0", 1.0)
    ind_key = f"{first.manifest.entry('ind').folder}/seed-1"
    first.study.mark_finished(first.manifest, ind_key, 1.0)
    for key in (f"{old}/seed-0", ind_key):
        (out / key).mkdir(parents=True)
    changed = study_spec(specs["dml"], "defaults.optimizer.lr=0.01")
    again = prepare(out, "study", [changed, study_spec(specs["ind"])], [0, 1, 2])
    again.study.release()
    assert again.stale == [old]
    assert (out / old / "spec.yaml").exists()
    new = again.manifest.entry("dml").folder
    assert new != old and "lr: 0.01" in (out / new / "spec.yaml").read_text()
    states = {r.key: r.state for r in plan_runs(again.study, again.manifest)}
    assert states[ind_key] == "finished" and states[f"{new}/seed-0"] == "new"
    assert len(states) == 6 and f"{old}/seed-0" not in states
    (out / new / "seed-1").mkdir()
    (out / new / "seed-1" / "last.pt").write_bytes(b"")
    assert {r.key: r.state for r in plan_runs(again.study, again.manifest)}[
        f"{new}/seed-1"
    ] == "resume"
    manifest = json.loads((out / "study.json").read_text())
    assert manifest["seeds"] == [0, 1, 2] and ind_key in manifest["finished"]


def test_a_line_per_finished_run() -> None:
    record = RunRecord(
        "kd", 2, "kd-1/seed-2", 12.31, {"a": NodeRun(91.24, 17, 90.0, [91.24]), "t": NodeRun(
            80.0, 1, 80.0, [80.0], frozen=True)}
    )  # fmt: skip
    stream = io.StringIO()
    with Display(total=10, done=2, stream=stream) as display:
        display.started("kd seed 2")
        assert "running kd seed 2" in display.status()
        display.finished("kd seed 2", run_line(record, "test"))
        display.failed_run("kd seed 3", "a NaN loss")
    assert stream.getvalue().splitlines() == [
        "[3/10] kd seed 2: best test top-1 a 91.2% (epoch 17), 12.3 s",
        "[failed] kd seed 3: a NaN loss",
    ]
    assert display.status().startswith("3/10 done; 1 failed;")


def test_a_workers_outcome_is_its_last_attempts(tmp_path: Path) -> None:
    log = tmp_path / "seed-0.log"
    job = Job("k/seed-0", "k seed 0", "spec.yaml", 0, str(tmp_path / "run"), log=str(log))
    log.write_text(
        '--- first\nktg-study-outcome: {"key": "k/seed-0", "status": "done", "reason": ""}\n'
        "--- second\nTraceback ...\nMemoryError\n"
    )
    outcome = read_outcome(job, -9)
    assert outcome.status == "failed"
    assert "ended with signal 9: MemoryError" in outcome.reason and str(log) in outcome.reason
    log.write_text(
        '--- again\nktg-study-outcome: {"key": "k/seed-0", "status": "interrupted", "reason": ""}\n'
    )
    assert read_outcome(job, 130).status == "interrupted"
    assert Job.from_json(job.to_json()) == job
    # a worker that printed far more than ktg reads of its log: its end is what counts
    chatter = "x" * 999 + "\n"
    with log.open("w") as f:
        f.write('--- one\nktg-study-outcome: {"key": "k/seed-0", "status": "done", "reason": ""}\n')
        f.write("--- two\n" + chatter * 3000 + "RuntimeError: out of luck\n")
    assert log.stat().st_size > 2 * LOG_TAIL
    outcome = read_outcome(job, 1)
    assert outcome.status == "failed" and "exit code 1: RuntimeError: out of luck" in outcome.reason
    log.write_text("--- one\n" + chatter * 3000 + 'ktg-study-outcome: {"key": "k/seed-0", '
                   '"status": "done", "reason": ""}\n')  # fmt: skip
    assert read_outcome(job, 0).status == "done"


@pytest.mark.slow
def test_workers_never_import_from_the_working_folder(tmp_path: Path) -> None:
    (tmp_path / "yaml.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('IMPORTED').touch()\n"
        "raise ImportError('the yaml.py of the working folder was imported')\n"
    )
    res = subprocess.run(
        worker_command(["not a job"], entry="ktg_dsl.study.worker:main"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr  # it got as far as reading its job
    assert "needs a job as JSON" in res.stderr
    assert not (tmp_path / "IMPORTED").exists()
