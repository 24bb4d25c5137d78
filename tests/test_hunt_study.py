"""Bad inputs to ``ktg study`` and ``ktg plot`` found by the bad-input hunt: seed counts too
large to list, damaged study manifests, damaged or missing run logs. Each is said in words
(no traceback, no hang) and nothing that was written is changed. Nothing here trains."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from ktg_dsl.study.manifest import StudyDir
from ktg_dsl.study.plan import parse_seeds

from .test_study import fake_study

RUN = "kd-00000000/seed-0"  # a run of fake_study's first spec


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def test_a_huge_seed_count_is_refused_without_building_it() -> None:
    # this process's CPU time, not the wall clock: a busy machine may keep a test waiting for
    # seconds; milliseconds now, seconds when it was quadratic
    tick = time.process_time()
    with pytest.raises(ValueError, match=r"--seeds 99,999,999,999 is more than a study runs"):
        parse_seeds("99999999999")  # was a MemoryError (a list of 10^11 seeds)
    with pytest.raises(ValueError, match=r"lists 20,000 seeds, more than a study runs"):
        parse_seeds(",".join(map(str, range(20_000))))  # was quadratic: list.count per seed
    assert time.process_time() - tick < 0.5
    assert parse_seeds("3") == [0, 1, 2]


def test_the_command_refuses_a_huge_seed_count(tmp_path: Path, cli: Any) -> None:
    code, _, err = cli("study", tmp_path / "a.yaml", "--seeds", "99999999999")
    assert code == 2 and "more than a study runs" in err and "Traceback" not in err


def _rewrite(study: Path, change: Any) -> None:
    path = study / "study.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


MANIFESTS = {
    "not UTF-8": (lambda p: p.write_bytes(b"\xff\xfe{}"), "not UTF-8 text"),
    "a list": (lambda p: p.write_text("[]"), "it holds a list, not an object"),
    "specs a string": (
        lambda p: _rewrite(p.parent, lambda d: d.update(specs="x")),
        "'specs' is a string",
    ),
    "a spec without its name": (
        lambda p: _rewrite(p.parent, lambda d: d["specs"][0].pop("name")),
        "it has no 'name'",
    ),
    "seeds of text": (
        lambda p: _rewrite(p.parent, lambda d: d.update(seeds=["a"])),
        "'seeds' must be a list of whole numbers",
    ),
    "finished a list": (
        lambda p: _rewrite(p.parent, lambda d: d.update(finished=[1])),
        "'finished' must map run names to records",
    ),
    "nested too deeply": (
        lambda p: p.write_text("[" * 200_000 + "]" * 200_000),
        "nested too deeply",
    ),
    "a name that is true": (
        lambda p: _rewrite(p.parent, lambda d: d["specs"][0].update(name=True)),
        "'name' is true",
    ),
    "two specs of one name": (
        lambda p: _rewrite(p.parent, lambda d: d["specs"].append(dict(d["specs"][0]))),
        "two specs are named",
    ),
    "a seed twice": (
        lambda p: _rewrite(p.parent, lambda d: d.update(seeds=[*d["seeds"], d["seeds"][0]])),
        "'seeds' lists a seed twice",
    ),
    "a spec name that leaves the study": (
        lambda p: _rewrite(p.parent, lambda d: d["specs"][0].update(name="../x")),
        "cannot name a folder of the study",
    ),
}


@pytest.mark.parametrize("case", MANIFESTS, ids=list(MANIFESTS))
def test_a_damaged_manifest_is_named_in_words(tmp_path: Path, cli: Any, case: str) -> None:
    damage, words = MANIFESTS[case]
    study = fake_study(tmp_path / "study")
    damage(study / "study.json")
    before = _snapshot(study)
    code, _, err = cli("study", "--summary", study)
    assert code == 2 and words in err and "Traceback" not in err, err
    assert "object has no attribute" not in err and "argument" not in err  # Python's words
    assert _snapshot(study) == before


def test_a_manifest_that_is_not_a_file_is_refused_at_once(tmp_path: Path, cli: Any) -> None:
    study = fake_study(tmp_path / "study")
    (study / "study.json").unlink()
    os.mkfifo(study / "study.json")
    code, _, err = cli("study", "--summary", study)
    assert code == 2 and "is not a regular file" in err and "study manifest" in err


def test_a_baseline_the_manifest_does_not_hold_falls_back_to_the_first(
    tmp_path: Path, cli: Any
) -> None:
    study = fake_study(tmp_path / "study")
    _rewrite(study, lambda d: d.update(baseline="gone", node="nobody"))  # was StopIteration
    code, out, err = cli("study", "--summary", study)
    assert code == 0 and "Traceback" not in err, err
    assert "## Against kd" in out


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write_rows(path: Path, rows: list[Any]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _set_first(key: str, value: Any) -> Any:
    def change(log: Path) -> None:
        rows = _rows(log)
        rows[0][key] = value
        _write_rows(log, rows)

    return change


LOGS = {
    "val_top1 text": (_set_first("val_top1", "x"), "line 1: 'val_top1' is \"x\", not a number"),
    "val_top1 NaN": (_set_first("val_top1", float("nan")), "'val_top1' is NaN"),
    "val_top1 true": (_set_first("val_top1", True), "'val_top1' is true, not a number"),
    "lr past a float": (_set_first("lr", 10**400), "'lr' is 100000"),
    "val_loss past a float": (_set_first("val_loss", -(10**400)), "a number too large"),
    "epoch text": (_set_first("epoch", "x"), 'the row\'s epoch is "x", not an epoch number'),
    "no node": (
        lambda log: _write_rows(
            log, [{k: v for k, v in r.items() if k != "node"} for r in _rows(log)]
        ),
        "line 1: the row names no node",
    ),
    "a list row": (lambda log: log.write_text(log.read_text() + "[1, 2]\n"), "not a JSON object"),
    "garbage in the middle": (
        lambda log: log.write_text("garbage\n" + log.read_text()),
        "line 1: it is not a JSON row",
    ),
    "no rows": (lambda log: log.write_text(""), "holds no epoch"),
    "a folder": (lambda log: (log.unlink(), log.mkdir()), "is a folder, not a run's metrics log"),
    "a FIFO": (lambda log: (log.unlink(), os.mkfifo(log)), "is not a regular file"),
    "the run gone": (lambda log: shutil.rmtree(log.parent), "is gone"),
}


@pytest.mark.parametrize("case", LOGS, ids=list(LOGS))
def test_a_damaged_run_is_left_out_of_the_summary_with_its_reason(
    tmp_path: Path, cli: Any, case: str
) -> None:
    """One damaged run (its log, or its folder) is named in a warning and left out; the
    study's other runs are still summarised. It was a traceback, or a hang for a FIFO."""
    damage, words = LOGS[case]
    study = fake_study(tmp_path / "study")
    damage(study / RUN / "metrics.jsonl")
    before = _snapshot(study)
    code, out, err = cli("study", "--summary", study)
    assert code == 0 and "Traceback" not in err, err
    assert f"warning: run {RUN} is left out" in err and words in err, err
    assert f"Finished but unreadable (see the warnings), left out: {RUN}." in out
    assert "| kd | s | 2 |" in out  # the other two seeds of kd
    assert _snapshot(study) == before


@pytest.mark.parametrize("case", [c for c in LOGS if c not in ("no rows", "the run gone")])
def test_plot_names_the_damage_of_a_log(tmp_path: Path, cli: Any, case: str) -> None:
    damage, words = LOGS[case]
    study = fake_study(tmp_path / "study")
    damage(study / RUN / "metrics.jsonl")
    code, _, err = cli("plot", study / RUN, "-o", tmp_path / "x.svg")
    assert code == 2 and words in err and "Traceback" not in err, err
    assert not (tmp_path / "x.svg").exists()


def test_a_cut_last_row_is_left_out_with_a_warning(tmp_path: Path, cli: Any) -> None:
    """A run still writing its log (or killed while it did) is plotted without the cut row."""
    study = fake_study(tmp_path / "study")
    log = study / RUN / "metrics.jsonl"
    log.write_text(log.read_text() + '{"epoch": 3, "node": "s", "val_to')
    code, _, err = cli("plot", study / RUN, "-o", tmp_path / "x.svg")
    assert code == 0 and "its last row is cut short (33 bytes); left out" in err, err


def test_plot_of_a_file_says_it_is_a_file(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "spec.yaml").write_text("x: 1\n")
    code, _, err = cli("plot", tmp_path / "spec.yaml")
    assert code == 2 and "is not a run directory (a file)" in err
    code, _, err = cli("study", "--summary", tmp_path / "spec.yaml")
    assert code == 2 and "is not a study directory (a file)" in err


def test_a_finished_run_whose_folder_is_gone_is_trained_again(tmp_path: Path) -> None:
    """Rerunning the study trains a run recorded as finished whose folder was deleted (it
    was an error on every rerun: the manifest said finished, the log was missing)."""
    from ktg_dsl.study.session import prepare

    from .conftest import write_spec
    from .test_study_inputs import study_spec, tiny

    dml = study_spec(write_spec(tmp_path, tiny(), "dml.yaml"))
    out = tmp_path / "study"
    first = prepare(out, "study", [dml], [0, 1])
    first.study.release()
    for seed in (0, 1):
        key = f"{dml.entry.folder}/seed-{seed}"
        first.study.mark_finished(first.manifest, key, 1.0)
    (out / dml.entry.folder / "seed-1").mkdir(parents=True)  # seed 0's folder is gone
    again = prepare(out, "study", [dml], [0, 1])
    again.study.release()
    assert again.lost == [f"{dml.entry.folder}/seed-0"]
    states = {r.seed: r.state for r in again.runs}
    assert states == {0: "new", 1: "finished"}
    assert f"{dml.entry.folder}/seed-0" not in StudyDir(out).read().finished


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        (["-o", "elsewhere"], "-o"),
        (["--seeds", "3"], "--seeds"),
        (["--jobs", "2"], "--jobs"),
        (["--no-pictures"], "--no-pictures"),
    ],
)
def test_summary_refuses_options_it_would_ignore(
    tmp_path: Path, cli: Any, extra: list[str], name: str
) -> None:
    study = fake_study(tmp_path / "study")
    code, _, err = cli("study", "--summary", study, *extra)
    assert code == 2 and f"so give no {name} with it" in err, err
    code, _, err = cli("study", "--summary", study, "--baseline", "dml", "--node", "s")
    assert code == 0, err
