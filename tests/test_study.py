"""``ktg study`` without training: the tables, files and pictures of a study whose runs are
written by hand (so every number is known), ``--summary``, ``ktg plot``, the study directory's
rules (stale spec versions, the lock, refusing to mix) and every bad input, each refused before
anything trains."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ktg_dsl.study.manifest import Manifest, StudyDir, StudyEntry, run_key

from .conftest import ROOT

PNG = b"\x89PNG\r\n\x1a\n"

# val_top1 per epoch: (spec, seed, node) -> curve
CURVES = {
    ("kd", 0, "s"): [60.0, 70.0, 68.0],
    ("kd", 1, "s"): [62.0, 66.0, 71.0],
    ("kd", 2, "s"): [61.0, 69.0, 69.0],
    ("dml", 0, "s"): [63.0, 72.0, 71.0],
    ("dml", 1, "s"): [65.0, 73.0, 73.0],
    ("dml", 2, "s"): [64.0, 70.0, 72.0],
    ("dml", 0, "t"): [50.0, 55.0, 54.0],
    ("dml", 1, "t"): [52.0, 57.0, 58.0],
    ("dml", 2, "t"): [51.0, 56.0, 56.0],
}
NODES = {"kd": ["s"], "dml": ["s", "t"]}


def write_run(path: Path, curves: dict[str, list[float]], seconds: float = 1.5) -> None:
    path.mkdir(parents=True)
    lines = []
    epochs = len(next(iter(curves.values())))
    for epoch in range(epochs):
        for node, curve in curves.items():
            row = {"epoch": epoch, "node": node, "train_loss": 1.0 / (epoch + 1)}
            row |= {"train_top1": curve[epoch] + 5, "val_top1": curve[epoch], "val_loss": 0.5}
            row |= {"lr": 0.1, "frozen": False, "elapsed": seconds * (epoch + 1) / epochs}
            lines.append(json.dumps(row))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def fake_study(
    folder: Path,
    curves: dict[tuple[str, int, str], list[float]] = CURVES,
    nodes: dict[str, list[str]] = NODES,
    unfinished: tuple[str, ...] = (),
) -> Path:
    """A study directory as ``ktg study`` leaves it, its runs' metrics written by hand."""
    entries = [
        StudyEntry(name, f"{i:016x}", f"{name}.yaml", "digits", "test", n)
        for i, (name, n) in enumerate(nodes.items())
    ]
    seeds = sorted({seed for _, seed, _ in curves})
    manifest = Manifest("fake", entries, seeds)
    study = StudyDir(folder)
    study.path.mkdir(parents=True)
    for e in entries:
        for seed in seeds:
            key = run_key(e.folder, seed)
            write_run(study.run_path(key), {n: curves[(e.name, seed, n)] for n in e.nodes})
            if key not in unfinished:
                manifest.finished[key] = {"seconds": 1.5}
    study.write(manifest)
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_summary_prints_the_tables(tmp_path: Path, cli: Any) -> None:
    study = fake_study(tmp_path / "study")
    code, out, err = cli("study", "--summary", study)
    assert code == 0, err
    # kd s: best 70, 71, 69 (epochs 2, 3, 2); last 68, 71, 69
    assert "| kd | s | 3 | 70.00 ± 1.00 | 69.00 / 71.00 | 2.3 | 69.33 ± 1.53 |" in out
    assert "test top-1 (%) over seeds 0, 1, 2" in out
    # dml s against kd s, best: 72 - 70, 73 - 71, 72 - 69 = 2, 2, 3 -> +2.33, sd 0.577,
    # t = 2.333 / (0.577 / sqrt 3) = 7.0 (2 degrees of freedom: p = 0.0198)
    assert "| dml | s | best | 3 | +2.33 | " in out and "| 7.00 | 0.020 | - |" in out
    assert "| dml | t |" not in out.split("## Against")[1]  # t is not in the baseline
    assert "Wilcoxon needs 5+ seeds: dml / s." in out


@pytest.mark.slow
def test_files_hold_the_runs_numbers(tmp_path: Path) -> None:
    from ktg_dsl.study.session import summary, write_outputs

    study = fake_study(tmp_path / "study")
    written = write_outputs(study, summary(study))
    names = {p.name for p in written}
    assert names == {
        "results.md", "results.csv", "results.json", "comparisons.csv",
        "curves.svg", "curves.png", "final.svg", "final.png",
    }  # fmt: skip
    rows = {(r["spec"], r["node"]): r for r in read_csv(study / "results.csv")}
    assert set(rows) == {("kd", "s"), ("dml", "s"), ("dml", "t"), ("dml", "graph mean")}
    for (spec, node), row in rows.items():
        if node == "graph mean":
            continue
        curves = [CURVES[(spec, seed, node)] for seed in (0, 1, 2)]
        best = [max(c) for c in curves]
        assert float(row["best_mean"]) == pytest.approx(statistics.fmean(best))
        assert float(row["best_std"]) == pytest.approx(statistics.stdev(best))
        assert float(row["last_mean"]) == pytest.approx(statistics.fmean(c[-1] for c in curves))
        assert float(row["best_min"]) == min(best) and float(row["best_max"]) == max(best)
        epochs = [c.index(max(c)) + 1 for c in curves]
        assert float(row["best_epoch_mean"]) == pytest.approx(statistics.fmean(epochs))
        assert (row["n"], row["seeds"], row["split"]) == ("3", "0 1 2", "test")
    graph = [statistics.fmean([max(CURVES[("dml", s, n)]) for n in "st"]) for s in (0, 1, 2)]
    assert float(rows[("dml", "graph mean")]["best_mean"]) == pytest.approx(statistics.fmean(graph))
    data = json.loads((study / "results.json").read_text())
    assert data["split"] == "test" and data["baseline"] == "kd" and len(data["runs"]) == 6
    cmp = read_csv(study / "comparisons.csv")
    assert [(c["spec"], c["node"], c["metric"]) for c in cmp] == [
        ("dml", "s", "best"),
        ("dml", "s", "last"),
    ]
    assert float(cmp[0]["t"]) == pytest.approx(7.0)


@pytest.mark.slow
def test_pictures_parse_and_are_reproducible(tmp_path: Path) -> None:
    from ktg_dsl.study.session import summary, write_outputs

    first = fake_study(tmp_path / "a")
    second = fake_study(tmp_path / "b")
    write_outputs(first, summary(first))
    write_outputs(second, summary(second))
    for name in ("curves", "final"):
        svg = (first / f"{name}.svg").read_bytes()
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        assert b"<dc:date>" not in svg
        assert svg == (second / f"{name}.svg").read_bytes(), f"{name}.svg differs between runs"
        assert (first / f"{name}.png").read_bytes()[:8] == PNG


def test_specs_without_a_common_node_compare_graph_means(tmp_path: Path, cli: Any) -> None:
    curves = {("one", s, "x"): [50.0 + s, 60.0 + s] for s in range(3)} | {
        ("two", s, n): [55.0 + s + k, 62.0 + s + k] for s in range(3) for k, n in enumerate("yz")
    }
    study = fake_study(tmp_path / "study", curves, {"one": ["x"], "two": ["y", "z"]})
    code, out, _ = cli("study", "--summary", study)
    assert code == 0
    # graph mean of two: (62 + s + 63 + s) / 2 = 62.5 + s; one: 60 + s -> +2.50 every seed
    assert "| two | graph mean | best | 3 | +2.50 | [+2.50, +2.50] | - | - | - |" in out
    assert "same amount" in out


def test_node_and_baseline_options(tmp_path: Path, cli: Any) -> None:
    study = fake_study(tmp_path / "study")
    code, out, _ = cli("study", "--summary", study, "--baseline", "dml")
    assert code == 0 and "## Against dml" in out and "| kd | s | best | 3 | -2.33 |" in out
    code, _, err = cli("study", "--summary", study, "--node", "t")
    assert code == 2 and "--node t: not a node of kd" in err
    code, _, err = cli("study", "--summary", study, "--baseline", "nope")
    assert code == 2 and "no spec of this study is named so" in err


def test_unfinished_runs_are_left_out(tmp_path: Path, cli: Any) -> None:
    study = fake_study(tmp_path / "study", unfinished=(run_key(StudyEntry(
        "kd", f"{0:016x}", "", "digits", "test", ["s"]).folder, 1),))  # fmt: skip
    code, out, _ = cli("study", "--summary", study)
    assert code == 0
    assert "| kd | s | 2 | 69.50 ± 0.71 |" in out  # seeds 0 and 2: best 70 and 69
    assert "| dml | s | best | 2 |" in out
    assert "Not finished, left out: kd-00000000/seed-1." in out


@pytest.mark.slow
def test_plot_draws_a_run(tmp_path: Path, cli: Any) -> None:
    run = tmp_path / "run"
    write_run(run, {"a": [50.0, 60.0, 65.0], "b": [40.0, 45.0, 52.0]})
    (run / "spec.resolved.yaml").write_text("name: tiny\ndata: {split: test}\n")
    code, out, err = cli("plot", run)
    assert code == 0, err
    assert ET.fromstring((run / "curves.svg").read_bytes()).tag.endswith("svg")
    assert (run / "curves.png").read_bytes()[:8] == PNG
    svg = (run / "curves.svg").read_text()
    assert "wrote" in out
    code, _, _ = cli("plot", run, "-o", tmp_path / "x.pdf")
    assert code == 0 and (tmp_path / "x.pdf").read_bytes()[:5] == b"%PDF-"
    code, _, _ = cli("plot", run, "-o", tmp_path / "again.svg")
    assert (tmp_path / "again.svg").read_text() == svg  # reproducible


def _empty_metrics(p: Path) -> Path:
    (p / "metrics.jsonl").write_text("")
    return p


def _a_run(p: Path) -> Path:
    write_run(p / "r", {"a": [1.0]})
    return p / "r"


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda p: p, (), "not a run directory (it holds no metrics.jsonl"),
        (lambda p: p / "nothing", (), "not a run directory (no such folder)"),
        (_empty_metrics, (), "no finished epoch yet"),
        (_a_run, ("-o", "x.txt"), "write .svg, .png or .pdf"),
    ],
)
def test_plot_refuses_what_is_not_a_run(
    tmp_path: Path, cli: Any, make: Any, args: tuple[str, ...], message: str
) -> None:
    code, _, err = cli("plot", make(tmp_path), *args)
    assert code == 2 and message in err


@pytest.mark.slow
def test_validate_imports_neither_matplotlib_nor_scipy(tmp_path: Path) -> None:
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); from ktg_dsl.cli import main; "
        "code = main(['validate', sys.argv[2]]); "
        "print(code, sorted(m for m in ('matplotlib', 'scipy', 'torch') if m in sys.modules))"
    )
    spec = ROOT / "specs" / "quickstart.yaml"
    res = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT), str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.stdout.strip().splitlines()[-1] == "0 []", res.stdout + res.stderr
