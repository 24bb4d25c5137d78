"""``ktg report`` (and ``ktg train --report``'s page) on broken inputs: each is refused with a
message that names the file and what was wrong, exit 2, no traceback and nothing written, or,
where a page can still be made, made without changing any input. Inputs are written here as
ktg writes them (tests/reportfiles.py) and then damaged; searches are Optuna journals and
databases made in-process."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.report.page import href
from ktg_dsl.report.svg import safe_svg
from tests.reportfiles import fake_run, metrics_rows, page_data
from tests.test_report import assert_self_contained


def refused(cli: Any, *args: Any) -> str:
    """``ktg report ARGS`` exits 2 with a one-line message and no traceback; the message."""
    code, out, err = cli("report", *args)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and err.startswith("ktg: "), err
    assert len(err.strip().splitlines()) == 1, err
    return err


def rewrite(run: Path, rows: list[dict[str, Any]]) -> None:
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


# ---- a run directory --------------------------------------------------------------------


def test_a_run_directory_without_its_log_or_its_spec(tmp_path: Path, cli: Any) -> None:
    run = fake_run(tmp_path / "run")
    (run / "metrics.jsonl").unlink()
    err = refused(cli, run)
    assert f"{run} is a run directory without its metrics.jsonl" in err
    started = tmp_path / "started"  # a run (and a study) claims its folder before it writes
    started.mkdir()
    (started / ".ktg.lock").write_text("1")
    assert "is a run directory without its metrics.jsonl" in refused(cli, started)
    (started / ".ktg.lock").rename(started / ".ktg-study.lock")
    assert "is a study directory without its study.json yet" in refused(cli, started)
    run = fake_run(tmp_path / "run2")
    (run / "spec.resolved.yaml").unlink()
    err = refused(cli, run, "-o", tmp_path / "p.html")
    assert "without its spec spec.resolved.yaml" in err and "draws the graph" in err
    assert not (tmp_path / "p.html").exists() and not (run / "report.html").exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: [x\nnodes: {", "is not YAML at line"),
        ("", "is not a spec: it is empty"),
        ("- 1\n- 2\n", "is not a spec: it is a YAML list"),
    ],
)
def test_a_damaged_spec_is_named_with_where(
    tmp_path: Path, cli: Any, text: str, words: str
) -> None:
    run = fake_run(tmp_path / "run")
    (run / "spec.resolved.yaml").write_text(text)
    err = refused(cli, run, "-o", tmp_path / "p.html")
    assert str(run / "spec.resolved.yaml") in err and words in err
    assert not (tmp_path / "p.html").exists()


def test_rows_of_a_node_the_spec_lacks_are_refused(tmp_path: Path, cli: Any) -> None:
    rows = metrics_rows()
    rows.append({**rows[-1], "node": "ghost"})
    run = fake_run(tmp_path / "run", rows)
    err = refused(cli, run, "-o", tmp_path / "p.html")
    assert "rows of node(s) 'ghost'" in err and "(it has a, b)" in err
    assert "different runs" in err and not (tmp_path / "p.html").exists()


@pytest.mark.parametrize(
    ("gates", "words"),
    [
        ([1], "'gates' [1], not an object"),
        ({"labels": "x"}, "'gates.labels' \"x\", not a weight"),
        ({"labels": -1.0}, "'gates.labels' -1.0, not a weight"),
        ({"labels": None}, "'gates.labels' null"),
        ({"labels": 10**400}, "'gates.labels' 1000"),
    ],
)
def test_damaged_gate_weights_are_refused(tmp_path: Path, cli: Any, gates: Any, words: str) -> None:
    rows = metrics_rows()
    for r in rows:
        del r["edges"]  # a log of an older ktg: the page reads the gates
    rows[3]["gates"] = gates
    run = fake_run(tmp_path / "run", rows)
    err = refused(cli, run, "-o", tmp_path / "p.html")
    assert f"{run / 'metrics.jsonl'} is damaged" in err and words in err
    assert f'node {rows[3]["node"]!r}, "epoch": {rows[3]["epoch"]}' in err


def test_a_last_epoch_still_being_written_is_left_out(tmp_path: Path, cli: Any) -> None:
    rows = metrics_rows()[:-1]  # epoch 2 has a's row, b's is not written yet
    run = fake_run(tmp_path / "run", rows)
    code, _, err = cli("report", run, "-o", tmp_path / "p.html")
    assert code == 0, err
    assert 'its last epoch ("epoch": 2) has rows of 1 of 2 nodes' in err
    data = page_data((tmp_path / "p.html").read_text())["run"]
    assert data["epochs"] == [0, 1] and data["nodes"]["b"]["val_top1"][-1] is not None


def test_a_path_that_is_an_empty_file_or_a_device(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "e.journal").write_bytes(b"")
    assert "is an empty file" in refused(cli, tmp_path / "e.journal")
    assert "a device, pipe or socket" in refused(cli, "/dev/null")
    run = fake_run(tmp_path / "run")
    err = refused(cli, run / "metrics.jsonl")
    assert f"is a file of a run directory; give the directory: ktg report {run}" in err
    (tmp_path / "x.yaml").write_text("a: 1\n")  # a spec, not what training wrote
    assert "`ktg train SPEC --report`" in refused(cli, tmp_path / "x.yaml")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert "a loop of links" in refused(cli, tmp_path / "loop")


# ---- the output -------------------------------------------------------------------------


def test_output_refusals(tmp_path: Path, cli: Any) -> None:
    run = fake_run(tmp_path / "run")
    assert "-o is empty" in refused(cli, run, "-o", "")
    assert "is a run directory: leave --study out" in refused(cli, run, "--study", "x")
    other = fake_run(tmp_path / "other")  # a link named .html to any run's log (a study's)
    link = tmp_path / "link.html"
    link.symlink_to(other / "metrics.jsonl")
    before = (other / "metrics.jsonl").read_bytes()
    err = refused(cli, run, "-o", link)
    assert f"links to {other / 'metrics.jsonl'}, which is not an .html file" in err
    assert (other / "metrics.jsonl").read_bytes() == before
    assert not (run / "report.html").exists()


def test_an_output_that_cannot_be_made_keeps_the_older_page(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import tempfile

    run = fake_run(tmp_path / "run")
    kept = tmp_path / "kept.html"
    kept.write_text("an older page\n")

    def read_only(*args: Any, **kwargs: Any) -> Any:  # what a read-only file system says
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    err = refused(cli, run, "-o", kept)
    assert f"cannot write {kept}: Read-only file system" in err and "unchanged" in err
    assert kept.read_text() == "an older page\n"
    assert {p.name for p in tmp_path.iterdir()} == {"run", "kept.html"}  # no temporary left


def test_a_live_page_never_replaces_the_log_it_links_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ktg_dsl.report.live import LiveReport
    from ktg_dsl.report.rundata import run_spec
    from ktg_dsl.run.rundir import RunDir

    run = fake_run(tmp_path / "run")
    before = (run / "metrics.jsonl").read_bytes()
    (run / "report.html").symlink_to(run / "metrics.jsonl")
    _, spec, graph = run_spec(run)
    hook = LiveReport(spec, graph, RunDir(run), tensorboard=False)
    hook(2, {})
    assert hook.failed and (run / "metrics.jsonl").read_bytes() == before
    err = capsys.readouterr().err
    assert "--report" in err and "would replace it" in err and "goes on" in err


# ---- page contents ----------------------------------------------------------------------


def test_links_to_folders_are_percent_encoded() -> None:
    assert href("../st #2 é/run?1") == "../st%20%232%20%C3%A9/run%3F1/"
    assert href("a/b") == "a/b/"


MATPLOTLIB_LIKE = (
    '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    '<svg xmlns:xlink="http://www.w3.org/1999/xlink" width="10pt" height="10pt" '
    'viewBox="0 0 10 10" xmlns="http://www.w3.org/2000/svg" version="1.1">\n'
    "<metadata><rdf>https://matplotlib.org/</rdf></metadata>\n"
    '<defs><path id="m1" d="M 0 0 L 1 1"/><clipPath id="p1"><rect width="5" height="5"/>'
    "</clipPath></defs>\n"
    '<g clip-path="url(#p1)"><use xlink:href="#m1" x="2" y="2"/></g>\n</svg>\n'
)


def test_a_pictures_own_references_are_kept() -> None:
    body = safe_svg(MATPLOTLIB_LIKE, "curves-")
    assert 'xlink:href="#curves-m1"' in body and "url(#curves-p1)" in body
    assert "http" not in body


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("<svg><script>alert(1)</script></svg>", "<script"),
        ('<svg onload="alert(1)"></svg>', "onload="),
        ('<svg><image href="https://example.org/x.png"/></svg>', "<image"),
        ('<svg><a href="javascript:alert(1)"><text>x</text></a></svg>', "<a"),
        ("<svg><style>@import 'x.css';</style></svg>", "@import"),
        ('<svg><rect style="fill:url(x.svg#a)"/></svg>', "url("),
        ("<svg></svg><img src=x onerror=alert(1)>", "not a well-formed SVG"),
        ("<html><svg></svg></html>", "not a well-formed SVG"),
        ("<html><body>no picture</body></html>", "not an SVG picture"),
    ],
)
def test_a_picture_that_could_run_or_fetch_is_refused(text: str, words: str) -> None:
    with pytest.raises(KtgRuntimeError) as caught:
        safe_svg(text)
    assert words in str(caught.value)


def test_a_studys_damaged_picture_is_left_out_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ktg_dsl.report.studypage import _pictures

    (tmp_path / "curves.svg").write_text("<svg><script>alert(1)</script></svg>")
    (tmp_path / "final.svg").write_text(MATPLOTLIB_LIKE)
    out = _pictures(tmp_path)
    assert "<script>" not in out and "alert" not in out
    assert "curves.svg: left out" in out and 'id="final-m1"' in out
    assert f"warning: {tmp_path / 'curves.svg'}: left out" in capsys.readouterr().err


# ---- a search ---------------------------------------------------------------------------


def journal_study(
    path: Any,
    states: list[str],
    name: str = "s",
    trial_attrs: dict[str, Any] | None = None,
    study_attrs: dict[str, Any] | None = None,
) -> Path:
    """An Optuna journal (or, for a sqlite URL, database) holding study ``name`` with one
    trial per state given (``complete``: objective 70; ``pruned``: it reported 50; ``fail``)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = str(path)
    storage: Any = url if "://" in url else JournalStorage(JournalFileBackend(url))
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for key, value in (study_attrs or {}).items():
        study.set_user_attr(key, value)
    for state in states:
        trial = study.ask()
        for key, value in (trial_attrs or {}).items():
            trial.set_user_attr(key, value)
        trial.suggest_categorical("gate:a<-b", ["through", "cutoff"])
        if state == "complete":
            study.tell(trial, 70.0)
        elif state == "pruned":
            trial.report(50.0, 1)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return path


def test_a_journal_is_read_without_changing_it(tmp_path: Path, cli: Any) -> None:
    journal = journal_study(tmp_path / "study.journal", ["complete", "complete"])
    with journal.open("ab") as f:  # a search writing its next record now
        f.write(b'{"op_code": 5, "worker_id": "w", "trial_id": 1, "sta')
    before = journal.read_bytes()
    code, _, err = cli("report", journal, "-o", tmp_path / "p.html")
    assert code == 0, err
    assert "ended in a record cut short" in err and "the file itself is not changed" in err
    assert journal.read_bytes() == before
    assert "2 trials (2 complete)" in (tmp_path / "p.html").read_text()


def test_journal_refusals(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "study.journal").write_bytes(b"")
    assert "holds no study yet (the journal is empty)" in refused(cli, tmp_path / "empty")
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "study.journal").write_text('{"not": "a record"}\n')
    err = refused(cli, folder, "-o", tmp_path / "p.html")
    assert "is not an Optuna journal file" in err
    journal = journal_study(tmp_path / "j.journal", ["complete"])
    lines = journal.read_text().splitlines(keepends=True)
    (tmp_path / "mid.journal").write_text("".join([lines[0], "garbage\n", *lines[1:]]))
    err = refused(cli, tmp_path / "mid.journal", "-o", tmp_path / "p.html")
    assert "is damaged at line 2" in err and str(tmp_path / "mid.journal") in err
    assert "ktg-report-" not in err  # said of the user's file, not of a copy
    assert not (tmp_path / "p.html").exists()


def test_a_search_without_a_complete_trial_still_has_a_page(tmp_path: Path, cli: Any) -> None:
    journal = journal_study(tmp_path / "j.journal", ["fail", "pruned"], "s", {"fail_reason": "OOM"})
    code, _, err = cli("report", journal, "-o", tmp_path / "p.html")
    assert code == 0, err
    text = (tmp_path / "p.html").read_text()
    assert "No complete trial yet: no graph." in text and "The best 0" not in text
    assert "2 trials (1 fail, 1 pruned)" in text
    assert ">fail: OOM</td>" in text and ">pruned</td>" in text  # why it failed


def test_trials_with_damaged_records_are_shown_without_them(tmp_path: Path, cli: Any) -> None:
    attrs = {"spec": "{{{: [", "run_dir": 7, "fail_reason": ["x"]}
    study_attrs = {"ktg_spec": 5}
    journal = journal_study(tmp_path / "j.journal", ["complete"], "s", attrs, study_attrs)
    code, _, err = cli("report", journal, "-o", tmp_path / "p.html")
    assert code == 0 and "Traceback" not in err, err
    text = (tmp_path / "p.html").read_text()
    assert "the spec its trial recorded cannot be read" in text
    journal = journal_study(tmp_path / "k.journal", ["complete"], "s", {"spec": {"a": 1}})
    assert cli("report", journal, "-o", tmp_path / "q.html")[0] == 0


def test_names_from_the_storage_are_escaped(tmp_path: Path, cli: Any) -> None:
    name = "</script><script>alert(1)</script>&\"'"
    journal = journal_study(tmp_path / "j.journal", ["complete"], name)
    code, _, err = cli("report", journal, "-o", tmp_path / "p.html")
    assert code == 0, err
    text = (tmp_path / "p.html").read_text()
    assert "<script>alert" not in text and "alert(1)" in text
    assert_self_contained(text)


def test_a_database_is_opened_only_when_it_is_optunas(tmp_path: Path, cli: Any) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE users (x)")
    before = other.read_bytes()
    err = refused(cli, f"sqlite:///{other}", "-o", tmp_path / "p.html")
    assert "holds no Optuna study (no 'studies' table)" in err
    assert other.read_bytes() == before  # Optuna would have added its tables
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    refused(cli, f"sqlite:///{empty}", "-o", tmp_path / "p.html")
    assert empty.read_bytes() == b""
    (tmp_path / "text.db").write_text("hello\n")
    assert "is not a SQLite database" in refused(
        cli, f"sqlite:///{tmp_path / 'text.db'}", "-o", tmp_path / "p.html"
    )
    assert "is a folder" in refused(cli, f"sqlite:///{tmp_path}", "-o", tmp_path / "p.html")
    assert "names no database file" in refused(cli, "sqlite://", "-o", tmp_path / "p.html")
    assert not (tmp_path / "p.html").exists()


def test_a_database_with_two_studies(tmp_path: Path, cli: Any) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    journal_study(url, ["complete"], "one")
    journal_study(url, ["complete"], "two")
    assert "holds 2 studies (one, two); name one: --study" in refused(
        cli, url, "-o", tmp_path / "p.html"
    )
    assert "has no study 'nope'" in refused(cli, url, "--study", "nope", "-o", tmp_path / "p.html")
    assert "give -o FILE" in refused(cli, url, "--study", "one")
    page = tmp_path / "db.html"  # a page written over the database it reads
    page.write_bytes((tmp_path / "two.db").read_bytes())
    err = refused(cli, f"sqlite:///{page}", "--study", "one", "-o", page)
    assert f"is the search database {page}" in err
    assert page.read_bytes() == (tmp_path / "two.db").read_bytes()
    code, _, err = cli("report", url, "--study", "two", "--top", 40, "-o", tmp_path / "p.html")
    assert code == 0, err
    for top in ("0", "-1", "41", str(10**30), "x"):
        with pytest.raises(SystemExit) as stop:  # argparse: usage, the error, exit 2
            cli("report", url, "--study", "two", "--top", top, "-o", tmp_path / "q.html")
        assert stop.value.code == 2
    assert not (tmp_path / "q.html").exists()


# ---- what ktg itself wrote (slow: training) -----------------------------------------------


@pytest.mark.slow
def test_a_self_supervised_run(tmp_path: Path, cli: Any) -> None:
    """digits-simclr's run: its page and --report's page evaluate by kNN (knn_top1, read
    as val_top1), and a val_loss that is null in every row draws no curve and no error."""
    spec = Path(__file__).resolve().parent.parent / "specs" / "digits-simclr.yaml"
    run = tmp_path / "run dir é"  # a space and a non-ASCII letter in the path
    sets = ["train.epochs=2", "train.threads=1", "data.batch_size=128"]
    sets.append("data.dataset={type: digits, train_per_class: 40}")
    code, _, err = cli(
        "train", spec, "--run-dir", run, "--no-progress", "--report", *[f"--set={s}" for s in sets]
    )
    assert code == 0, err
    code, _, err = cli("report", run, "-o", tmp_path / "pâge #1.html")
    assert code == 0, err
    for page in (run / "report.html", tmp_path / "pâge #1.html"):
        text = page.read_text()
        assert_self_contained(text)
        data = page_data(text)["run"]
        assert data["split"].startswith("kNN") and data["epochs"] == [0, 1]
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert data["nodes"]["a"]["val_top1"] == [r["knn_top1"] for r in rows if r["node"] == "a"]
        assert data["nodes"]["a"]["val_loss"] == [None, None]
        assert "<th>contrastive top-1</th>" in text and "<th>eval loss (none: kNN)</th>" in text


def test_a_best_trial_whose_run_is_damaged_is_drawn_from_its_spec(tmp_path: Path, cli: Any) -> None:
    import yaml

    from tests.reportfiles import SPEC

    run = fake_run(tmp_path / "trial-0000")
    with (run / "metrics.jsonl").open("a") as f:
        f.write("garbage\n")
    attrs = {"spec": yaml.safe_dump(SPEC), "run_dir": str(run)}
    journal = journal_study(tmp_path / "j.journal", ["complete"], "s", attrs)
    code, _, err = cli("report", journal, "-o", tmp_path / "p.html")
    assert code == 0, err
    text = (tmp_path / "p.html").read_text()
    assert "its run cannot be read: " in text and "is damaged at line 7" in text
    assert 'class="graph"' in text  # the graph, as its spec draws it


def test_a_chart_leaves_nan_and_infinite_values_out_of_its_lines() -> None:
    """A damaged or hand-edited log's NaN or inf is a gap in the curve, never a coordinate."""
    from ktg_dsl.report.plot import Series, chart

    values = [1.0, float("nan"), 2.0, float("inf"), float("-inf"), 3.0]
    svg = chart("loss", list(range(6)), [Series("a", values), Series("b", values, points=True)])
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    assert svg.count("<circle") == 3 and svg.count(" L") == 2  # three finite points each
