"""``ktg report`` and ``ktg train --report`` on what ktg itself wrote: a trained run, a study
and a search, on tiny synthetic data (no browser here: tests/test_report_browser.py loads such
pages in chromium; these checks run wherever the suite runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import small_spec, write_spec
from tests.reportfiles import page_data
from tests.test_report import assert_self_contained
from tests.test_search import search_spec

pytestmark = pytest.mark.slow
NODES = {name: {"model": {"type": "small_cnn", "width": 4}} for name in ("a", "b")}
EDGES = [{"to": "a", "from": "labels"}, {"to": "b", "from": "labels"}, {"to": "a", "from": "b"}]


def test_train_report_keeps_the_page_and_the_tensorboard_images(tmp_path: Path, cli: Any) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec = write_spec(tmp_path, small_spec("live", NODES, EDGES, epochs=2))
    run = tmp_path / "run"
    code, _, err = cli("train", spec, "--run-dir", run, "--no-progress", "--report")
    assert code == 0, err
    text = (run / "report.html").read_text()
    assert_self_contained(text)
    data = page_data(text)["run"]
    assert data["epochs"] == [0, 1] and "so far" not in text  # the last page: not "training"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    b_a = next(e for e in data["edges"] if e["key"] == "b->a")
    assert b_a["term"] == [r["edges"]["b"]["term"] for r in rows if r["node"] == "a"]
    events = EventAccumulator(str(run / "tb" / "ktg.graph"), size_guidance={"images": 0})
    events.Reload()
    assert [i.step for i in events.Images("graph")] == [1, 2]


def test_a_study_page(tmp_path: Path, cli: Any) -> None:
    one = write_spec(tmp_path, small_spec("solo", NODES, EDGES[:2]), "solo.yaml")
    two = write_spec(tmp_path, small_spec("mutual", NODES, EDGES), "mutual.yaml")
    study = tmp_path / "study"
    code, _, err = cli("study", one, two, "--seeds", "2", "-o", study, "--no-pictures")
    assert code == 0, err
    out = tmp_path / "pages" / "study.html"
    out.parent.mkdir()
    code, _, err = cli("report", study, "-o", out)
    assert code == 0, err
    text = out.read_text()
    refs = assert_self_contained(text)
    assert {"results", "comparisons", "runs", "run-frame"} <= refs.ids
    data = page_data(text)
    assert [g["spec"] for g in data["graphs"]] == ["solo", "mutual"]
    assert len(data["pages"]) == 4  # every run's own page, each a whole page
    for page in data["pages"].values():
        assert_self_contained(page)
        assert page_data(page)["kind"] == "run"
    links = [r[2] for r in refs.refs if r[0] == "a"]
    assert "../study/solo-" in links[0] and all((out.parent / link).is_dir() for link in links)


def test_a_search_page(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, search_spec(trials=3))
    code, _, err = cli("search", spec)
    assert code == 0, err
    code, out, err = cli("report", tmp_path / "runs" / "s" / "search", "--top", "2")
    assert code == 0, err
    page = tmp_path / "runs" / "s" / "search" / "report.html"
    assert str(page) in out
    text = page.read_text()
    refs = assert_self_contained(text)
    assert {"trials", "choices"} <= refs.ids
    assert text.count('class="graph"') == 2 + 2  # the two best, and their run pages' graphs
    data = page_data(text)
    assert len(data["graphs"]) == 2 and len(data["pages"]) == 2
    assert text.count("<tr>") >= 3 + 2  # three trials, two choices (an edge's gate, b's model)
    code, _, err = cli("report", tmp_path / "runs" / "s" / "search", "--study", "nope")
    assert code == 2 and "has no study 'nope'" in err
