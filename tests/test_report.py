"""``ktg report`` on a run directory (written in ktg's on-disk format, no training): the page
is one self-contained file, its graph has the ids the script restyles, the data it embeds per
epoch is the run's metrics.jsonl, bad inputs are refused with exit 2 and nothing overwritten;
``ktg train --report``'s hook writes the page and a TensorBoard image. The browser's view of
these pages: tests/test_report_browser.py."""

from __future__ import annotations

import html
import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from ktg_dsl.report.live import LiveReport, _restyled, edge_looks, ramp
from ktg_dsl.report.rundata import load_run
from ktg_dsl.report.searchdata import SearchData, Trial, choice_summary
from ktg_dsl.run.rundir import RunDir
from tests.reportfiles import LOSS_BA, WEIGHT_BA, fake_run, metrics_rows, page_data

EDGE_KEYS = ["labels->a", "b->a", "labels->b", "a->b"]


class Refs(HTMLParser):
    """Every attribute that makes a browser fetch or open something, and every element."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data", "poster", "srcset"):
                self.refs.append((tag, name, value or ""))
            if name == "id" and value:
                self.ids.add(value)


def parsed(text: str) -> Refs:
    refs = Refs()
    refs.feed(text)
    return refs


def assert_self_contained(text: str) -> Refs:
    refs = parsed(text)
    outside = [r for r in refs.refs if not r[2].startswith("#") and r[0] != "a"]
    assert not outside, outside  # no script, style, image or frame from anywhere
    assert "link" not in refs.tags and "img" not in refs.tags
    assert "http://" not in text and "https://" not in text and "url(" not in text
    assert len(text.encode()) < 5 * 1024 * 1024
    return refs


@pytest.fixture
def page(tmp_path: Path, cli: Any) -> tuple[Path, str]:
    run = fake_run(tmp_path / "run")
    code, out, err = cli("report", run, "-o", tmp_path / "r.html")
    assert code == 0, err
    assert "run page" in out
    return run, (tmp_path / "r.html").read_text()


def test_run_page_is_one_self_contained_file(page: tuple[Path, str]) -> None:
    _, text = page
    refs = assert_self_contained(text)
    assert text.count("<svg") >= 4  # the graph and its three charts, inline
    assert {"epoch", "play", "edge-table", "node-table"} <= refs.ids
    assert "device" in text and "fp32" in text and "positive_linear" in text  # env, spec


def test_the_graph_has_an_id_for_every_edge_and_node(page: tuple[Path, str]) -> None:
    refs = parsed(page[1])
    ids = {html.unescape(i) for i in refs.ids}
    assert {f"edge:{k}" for k in EDGE_KEYS} <= ids
    assert {"node:a", "node:b", "node:labels"} <= ids


def test_the_embedded_data_is_the_metrics_log(page: tuple[Path, str]) -> None:
    run, text = page
    data = page_data(text)
    assert data["kind"] == "run" and data["run"]["epochs"] == [0, 1, 2]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rows = {(r["epoch"], r["node"]): r for r in map(json.loads, lines)}
    edges = {e["key"]: e for e in data["run"]["edges"]}
    assert sorted(edges) == sorted(EDGE_KEYS)
    for key, e in edges.items():
        sender, receiver = key.split("->")
        for epoch in range(3):
            parts = rows[(epoch, receiver)]["edges"].get(sender)
            want = (0.0, None, 0.0) if parts is None else (
                parts["weight"], parts["loss"], parts["term"])  # fmt: skip
            assert (e["weight"][epoch], e["value"][epoch], e["term"][epoch]) == want
    assert edges["b->a"]["weight"] == WEIGHT_BA
    for node in ("a", "b"):
        assert data["run"]["nodes"][node]["val_top1"] == [
            rows[(e, node)]["val_top1"] for e in range(3)
        ]


def test_a_page_of_a_run_with_gates_but_no_edge_losses(tmp_path: Path, cli: Any) -> None:
    """A log written before edges had their own losses: the gate weights, no terms."""
    rows = metrics_rows()
    for r in rows:
        del r["edges"]
    run = fake_run(tmp_path / "old", rows)
    data, _, _ = load_run(run)
    ba = next(e for e in data.edges if e.key == "b->a")
    assert ba.weight == WEIGHT_BA and ba.term == [0.0, None, None] and ba.value == [None] * 3


def test_bad_inputs_exit_2_and_overwrite_nothing(tmp_path: Path, cli: Any) -> None:
    run = fake_run(tmp_path / "run")
    log = run / "metrics.jsonl"
    before = log.read_bytes()
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello\n")
    link = tmp_path / "link.html"
    link.symlink_to(log)
    cases = {
        "no such file": [tmp_path / "nope"],
        "is not a run, a study or a search": [tmp_path / "empty"],
        "not a search journal": [tmp_path / "notes.txt"],
        "would replace it": [run, "-o", link],
        "the folder": [run, "-o", tmp_path / "missing" / "r.html"],
        "name an .html file": [run, "-o", tmp_path / "r.txt"],
        "--study names": [run, "--study", "x"],
        "no such database file": [f"sqlite:///{tmp_path / 'none.db'}", "-o", tmp_path / "s.html"],
    }
    for words, args in cases.items():
        code, _, err = cli("report", *args)
        assert code == 2 and words in err and "Traceback" not in err, (words, err)
    assert log.read_bytes() == before and not (tmp_path / "none.db").exists()
    kept = tmp_path / "kept.html"
    kept.write_text("an older page\n")
    log.write_text('{"epoch": 0, "node": "a", "train_loss": "x"\n{broken\n')
    code, _, err = cli("report", run, "-o", kept)
    assert code == 2 and str(log) in err and "Traceback" not in err
    assert kept.read_text() == "an older page\n"


def test_a_run_without_a_finished_epoch(tmp_path: Path, cli: Any) -> None:
    run = fake_run(tmp_path / "run", rows=[])
    code, _, err = cli("report", run)
    assert code == 2 and "no finished epoch" in err
    assert not (run / "report.html").exists()


def test_the_default_output_is_in_the_run(tmp_path: Path, cli: Any) -> None:
    run = fake_run(tmp_path / "run")
    assert cli("report", run)[0] == 0
    assert page_data((run / "report.html").read_text())["run"]["name"] == "tiny-report"


def test_the_live_hook_writes_the_page_and_a_tensorboard_image(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ktg_dsl.report.rundata import run_spec

    run = fake_run(tmp_path / "run")
    _, spec, graph = run_spec(run)
    hook = LiveReport(spec, graph, RunDir(run))
    try:
        hook(2, {})
    finally:
        hook.close()
    text = (run / "report.html").read_text()
    assert page_data(text)["run"]["epochs"] == [0, 1, 2]
    assert not [p for p in os.listdir(run) if p.startswith(".")]  # no temporary file left
    events = EventAccumulator(str(run / "tb" / "ktg.graph"), size_guidance={"images": 0})
    events.Reload()
    (image,) = events.Images("graph")
    assert image.step == 3 and image.width > 100 and image.height > 100
    assert image.encoded_image_string.startswith(b"\x89PNG")


def test_edge_looks_follow_weight_and_share(tmp_path: Path) -> None:
    data, _, _ = load_run(fake_run(tmp_path / "run"))
    first, last = edge_looks(data, 0), edge_looks(data, 2)
    assert first["b->a"][1] < last["b->a"][1]  # the gate opened: a wider pen
    assert first["b->a"][0].endswith("1f")  # weight 0: faint (alpha 0.12)
    assert last["labels->b"][0][:7] != last["a->b"][0][:7]  # most of b's loss vs a little
    assert ramp(0.0) == "#4575b4" and ramp(1.0) == "#d73027"
    share = WEIGHT_BA[2] * LOSS_BA[2] / (WEIGHT_BA[2] * LOSS_BA[2] + 1.5 / 3)
    assert last["b->a"][0][:7] == ramp(share)


def test_restyled_changes_only_the_edge_named() -> None:
    line = '\tb -> a [arrowsize=0.8 color="#a6c8e8;0.333:#4a90d0;0.333" fontcolor="#0b4f9c" '
    line += 'id="edge:b->a" penwidth=2.00]'
    out = _restyled(line, {"b->a": ("#d73027ff", 5.6)})
    assert 'color="#d73027ff"' in out and "penwidth=5.60" in out
    assert 'fontcolor="#0b4f9c"' in out
    assert _restyled(line, {"a->b": ("#000000ff", 1.0)}) == line


def test_the_choice_summary_averages_complete_trials() -> None:
    def trial(n: int, state: str, value: float, gate: str) -> Trial:
        return Trial(n, state, value, 1.0, {"gate:a<-b": gate, "param:x": 0.5}, None, None)

    data = SearchData("s", "j", "maximize", "a val_top1")
    data.trials = [
        trial(0, "complete", 90.0, "through"),
        trial(1, "complete", 80.0, "cutoff"),
        trial(2, "complete", 94.0, "through"),
        trial(3, "pruned", 10.0, "cutoff"),
    ]
    choices, rows = choice_summary(data)
    assert choices == ["through", "cutoff"] and [r.param for r in rows] == ["gate:a<-b"]
    assert rows[0].mean("through") == 92.0 and rows[0].mean("cutoff") == 80.0
    assert [t.number for t in data.best(2)] == [2, 0]


def test_a_page_that_cannot_be_made_never_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from ktg_dsl.report.rundata import run_spec

    run = fake_run(tmp_path / "run")
    _, spec, graph = run_spec(run)
    hook = LiveReport(spec, graph, RunDir(run), tensorboard=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz
    hook(0, {})
    hook(1, {})
    err = capsys.readouterr().err
    assert err.count("--report") == 1 and "'dot' was not found" in err
    assert hook.failed and not (run / "report.html").exists()


def test_a_feature_edge_stays_a_double_line() -> None:
    line = '\twide:b2 -> mid:b2 [color="#333333:invis:#333333" id="edge:wide.b2->mid.b2" '
    line += "penwidth=1.30]"
    out = _restyled(line, {"wide.b2->mid.b2": ("#d73027ff", 5.6)})
    assert 'color="#d73027ff:invis:#d73027ff"' in out and "penwidth=3.10" in out
    unseen = line.replace("penwidth=1.30]", "penwidth=1.30 style=invis]")
    assert _restyled(unseen, {"wide.b2->mid.b2": ("#d73027ff", 5.6)}) == unseen
