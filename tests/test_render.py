"""``ktg render``: real pictures from the real ``dot``, parsed and checked against the spec."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, base_spec

SVG = "{http://www.w3.org/2000/svg}"
BEST = ROOT / "specs" / "cifar100-ktg-best.yaml"
KD = ROOT / "specs" / "cifar100-kd.yaml"
QUICKSTART = ROOT / "specs" / "quickstart.yaml"
IMAGES = {"cifar100-ktg-best.svg": BEST, "quickstart.svg": QUICKSTART}

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")
Cli = Callable[..., tuple[int, str, str]]


def parse(path: Path) -> tuple[dict[str, ET.Element], dict[str, ET.Element]]:
    """Graphviz's SVG: nodes and edges by their <title> ('r32a', 'r32b->r32a')."""
    root = ET.parse(path).getroot()
    found: dict[str, dict[str, ET.Element]] = {"node": {}, "edge": {}}
    for g in root.iter(f"{SVG}g"):
        kind = (g.get("class") or "").split(" ")[0]
        if kind in found:
            title = g.find(f"{SVG}title")
            assert title is not None and title.text is not None
            found[kind][title.text] = g
    return found["node"], found["edge"]


def text(g: ET.Element) -> str:
    return "\n".join(t.text or "" for t in g.iter(f"{SVG}text"))


def classes(g: ET.Element) -> set[str]:
    return set((g.get("class") or "").split())


def widths(g: ET.Element) -> set[float]:
    return {float(p.get("stroke-width", "1")) for p in g.iter(f"{SVG}path")}


def gate_matrix_edges(spec: Path) -> dict[str, str]:
    """sender->receiver: gate name, read straight from the YAML (not through ktg)."""
    data = yaml.safe_load(spec.read_text())
    names = list(data["nodes"])
    return {
        f"{'labels' if r == c else names[c]}->{names[r]}": gate
        for r, row in enumerate(data["gate_matrix"])
        for c, gate in enumerate(row)
    }


@pytest.fixture
def render(cli: Cli, tmp_path: Path) -> Callable[..., tuple[int, str, str, Path]]:
    def run(spec: Path, *args: Any, out: str = "graph.svg") -> tuple[int, str, str, Path]:
        path = tmp_path / out
        code, stdout, stderr = cli("render", spec, "-o", path, *args)
        return code, stdout, stderr, path

    return run


# --------------------------------------------------------------------------- the picture


@needs_dot
def test_best_graph_draws_every_open_edge_of_its_gate_matrix(render) -> None:
    code, out, err, path = render(BEST)
    assert code == 0, err
    assert out.strip() == f"wrote {path} (3 nodes, 7 edges)"
    nodes, edges = parse(path)
    assert set(nodes) == {"labels", "r32a", "r32b", "r110", "ktg.legend"}
    matrix = gate_matrix_edges(BEST)
    assert set(edges) == {k for k, gate in matrix.items() if gate != "cutoff"}
    style = {"through": "gate-through", "positive_linear": "gate-rising"}
    style["negative_linear"] = "gate-falling"
    for key, g in edges.items():
        assert style[matrix[key]] in classes(g), key
    # the kind reads from the label: a glyph and a sparkline on the varying edges only
    assert "↗ positive_linear" in text(edges["r32b->r32a"])
    assert "▁▂▃▄▅▆▇█" in text(edges["r32b->r32a"])
    assert "↘ negative_linear" in text(edges["labels->r32b"])
    assert "█▇▆▅▄▃▂▁" in text(edges["labels->r32b"])
    assert text(edges["r110->r32b"]) == ""  # through with the default loss: no label at all
    assert "0.47 M params" in text(nodes["r32a"]) and "1.73 M params" in text(nodes["r110"])
    assert "ground truth" in text(nodes["labels"])
    assert "rising over training" in text(nodes["ktg.legend"])


@needs_dot
def test_show_cutoff_adds_the_cutoff_edges_faint(render) -> None:
    code, _, err, path = render(BEST, "--show-cutoff")
    assert code == 0, err
    _, edges = parse(path)
    matrix = gate_matrix_edges(BEST)
    assert set(edges) == set(matrix)
    cut = {k for k, gate in matrix.items() if gate == "cutoff"}
    assert cut == {"r32a->r32b", "r32b->r110"}
    for key in cut:
        assert "gate-cutoff" in classes(edges[key])
        assert widths(edges[key]) == {1.0}
        assert any(p.get("stroke-dasharray") for p in edges[key].iter(f"{SVG}path"))


@needs_dot
def test_frozen_teacher_and_loss_labels(
    render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the spec is checked as ktg validate checks it: its teacher's weights must be there
    monkeypatch.chdir(tmp_path)
    teacher = Path("runs/cifar100-pretrain-resnet110/latest/best/r110.pt")
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(b"")
    code, out, err, path = render(KD)
    assert code == 0, err
    assert "(2 nodes, 2 edges)" in out
    nodes, edges = parse(path)
    assert "frozen" in classes(nodes["teacher"]) and "frozen teacher" in text(nodes["teacher"])
    assert "frozen" not in classes(nodes["student"])
    assert "frozen teacher" not in text(nodes["student"])
    assert len(nodes["teacher"].findall(f"{SVG}polygon")) == 2  # a double border
    assert text(edges["teacher->student"]) == "kl T=4"  # not the default T=1: shown
    assert text(edges["labels->student"]) == ""  # ce on the labels edge: the default
    assert "objective" not in text(nodes["ktg.legend"])


@needs_dot
def test_search_objective_is_marked(render, spec_file) -> None:
    path = spec_file(base_spec(search={"objective": {"node": "b"}}))
    code, _, err, out = render(path)
    assert code == 0, err
    nodes, _ = parse(out)
    assert "objective" in classes(nodes["b"]) and "search objective" in text(nodes["b"])
    assert "objective" not in classes(nodes["a"])
    # without search: no node is the objective
    code, _, _, out = render(spec_file(base_spec(), "plain.yaml"), out="plain.svg")
    assert code == 0
    assert not any("objective" in classes(g) for g in parse(out)[0].values())


@needs_dot
def test_correct_and_parametric_gates(render, spec_file) -> None:
    data = base_spec()
    data["edges"][0]["gate"] = "correct"
    data["edges"][2]["gate"] = {"type": "linear", "start": 0.5, "end": 0.5}
    code, _, err, out = render(spec_file(data))
    assert code == 0, err
    _, edges = parse(out)
    assert "gate-correct" in classes(edges["labels->a"])
    assert text(edges["labels->a"]) == "✓ correct\n(per sample)"
    assert "gate-parametric" in classes(edges["b->a"])
    assert text(edges["b->a"]) == "linear 0.5->0.5"  # constant: no sparkline


@needs_dot
def test_epoch_draws_the_weights_in_force(render, spec_file) -> None:
    data = base_spec(train={"epochs": 5})
    data["edges"][2]["gate"] = "positive_linear"  # b -> a
    path = spec_file(data)
    code, _, err, out = render(path, "--epoch", "0", out="e0.svg")
    assert code == 0, err
    _, edges = parse(out)
    assert "w=0" in text(edges["b->a"]).splitlines()
    assert max(widths(edges["b->a"])) < 1  # faint at weight 0
    opacity = {float(p.get("stroke-opacity", "1")) for p in edges["b->a"].iter(f"{SVG}path")}
    assert max(opacity) < 0.3
    full = max(widths(edges["a->b"]))  # through: weight 1 at every epoch
    assert "w=1" in text(edges["a->b"]).splitlines()

    code, _, err, out = render(path, "--epoch", "4", out="e4.svg")
    assert code == 0, err
    _, edges = parse(out)
    assert "w=1" in text(edges["b->a"]).splitlines()
    assert max(widths(edges["b->a"])) == full
    code, _, err, out = render(path, "--epoch", "2", out="e2.svg")
    assert "w=0.5" in text(parse(out)[1]["b->a"]).splitlines()
    assert 1 < max(widths(parse(out)[1]["b->a"])) < full


@pytest.mark.parametrize("epoch", ["5", "-1"])
def test_epoch_outside_the_run_is_a_usage_error(render, spec_file, epoch: str) -> None:
    code, _, err, out = render(spec_file(base_spec()), "--epoch", epoch)
    assert code == 2
    assert f"--epoch {epoch} is outside the run" in err and "0..2" in err
    assert not out.exists()


@needs_dot
def test_mutual_pairs_are_two_separate_curves(render) -> None:
    code, _, _, out = render(QUICKSTART)
    assert code == 0
    _, edges = parse(out)
    assert len(edges) == 9
    for a, b in (("cnn_a", "cnn_b"), ("cnn_a", "cnn_c"), ("cnn_b", "cnn_c")):
        there, back = edges[f"{a}->{b}"], edges[f"{b}->{a}"]
        curves = [[p.get("d") for p in g.iter(f"{SVG}path")] for g in (there, back)]
        assert curves[0] and curves[1] and curves[0] != curves[1]


# --------------------------------------------------------------------------- files and formats


@needs_dot
def test_same_spec_same_bytes(render) -> None:
    for fmt in ("svg", "dot", "pdf"):
        first = render(BEST, "--show-cutoff", out=f"one.{fmt}")[3].read_bytes()
        second = render(BEST, "--show-cutoff", out=f"two.{fmt}")[3].read_bytes()
        assert first == second, fmt


@needs_dot
def test_png_and_format_override(render) -> None:
    code, _, err, out = render(BEST, out="graph.png")
    assert code == 0, err
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    code, _, err, out = render(BEST, "--format", "svg", out="graph.txt")
    assert code == 0, err
    assert "r32b->r32a" in parse(out)[1]


def test_unknown_extension_is_a_usage_error(render) -> None:
    code, _, err, out = render(BEST, out="graph.txt")
    assert code == 2 and "cannot tell the format" in err and "--format" in err
    assert not out.exists()


def test_dot_source_needs_no_graphviz_program(render, monkeypatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, out, err, path = render(BEST, out="graph.dot")
    assert code == 0, err
    assert "wrote" in out
    source = path.read_text()
    assert source.startswith('digraph "cifar100-ktg-best" {')
    assert "r32b -> r32a" in source
    # a cut-off edge is laid out (so --show-cutoff moves nothing) but not drawn
    cut = next(line for line in source.splitlines() if "r32a -> r32b" in line)
    assert "style=invis" in cut

    code, out, err, path = render(BEST, out="graph.svg")
    assert code == 1
    assert "'dot' was not found" in err
    assert "apt-get install graphviz" in err and "brew install graphviz" in err
    assert "conda install" in err and "-o graph.dot" in err
    assert not path.exists() and out == ""


@needs_dot
def test_missing_or_unwritable_output_folder(render, tmp_path: Path) -> None:
    code, _, err, _ = render(BEST, out="missing/graph.svg")
    assert code == 1 and "ktg: error: cannot write" in err and "does not exist" in err
    assert not (tmp_path / "missing").exists()

    (tmp_path / "a-file").write_text("")
    code, _, err, _ = render(BEST, out="a-file/graph.svg")
    assert code == 1 and "is not a folder" in err

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere
            pytest.skip("running as root: a read-only folder is still writable")
        code, _, err, _ = render(BEST, out="locked/graph.svg")
        assert code == 1 and "not writable" in err
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@needs_dot
def test_a_failed_write_leaves_no_partial_file(render, monkeypatch, tmp_path: Path) -> None:
    import ktg_dsl.atomic

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ktg_dsl.atomic.os, "replace", disk_full)
    code, _, err, out = render(BEST)
    assert code == 1 and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    assert not out.exists()


def test_invalid_spec_gives_the_validate_messages(
    cli: Cli, capsys: pytest.CaptureFixture[str], spec_file, tmp_path: Path
) -> None:
    data = base_spec()
    data["edges"].append({"to": "c", "from": "a"})
    data["edges"].append({"to": "a", "from": "b"})
    path = spec_file(data)
    code, _, expected = cli("validate", path)
    assert code == 1
    out = tmp_path / "graph.dot"
    code, stdout, err = cli("render", path, "-o", out, "--schedule", tmp_path / "s.csv")
    assert code == 1
    assert stdout == ""
    assert err == expected
    assert "'c', which is not a node" in err and "duplicate edge b -> a" in err
    assert not out.exists() and not (tmp_path / "s.csv").exists()


# --------------------------------------------------------------------------- the schedule


def test_schedule_csv_holds_every_edge_weight(render, tmp_path: Path) -> None:
    from ktg_dsl.registry import GATES

    sched = tmp_path / "schedule.csv"
    code, out, err, _ = render(BEST, "--schedule", sched, out="graph.dot")
    assert code == 0, err
    assert f"wrote {sched} (7 edges over 200 epochs)" in out
    rows = list(csv.reader(sched.read_text().splitlines()))
    header, body = rows[0], rows[1:]
    matrix = gate_matrix_edges(BEST)
    assert header[0] == "epoch"
    assert set(header[1:]) == {k for k, g in matrix.items() if g != "cutoff"}
    assert [int(r[0]) for r in body] == list(range(200))
    for col, key in enumerate(header[1:], start=1):
        gate = GATES.get(matrix[key]).build({})
        assert [float(r[col]) for r in body] == [gate.weight(e, 200) for e in range(200)], key


def test_schedule_csv_counts_the_correct_gate_as_one(render, spec_file, tmp_path: Path) -> None:
    data = base_spec()
    data["edges"][2]["gate"] = "correct"
    sched = tmp_path / "s.csv"
    code, _, err, _ = render(spec_file(data), "--schedule", sched, out="g.dot")
    assert code == 0, err
    rows = list(csv.DictReader(sched.read_text().splitlines()))
    assert [r["b->a"] for r in rows] == ["1.0", "1.0", "1.0"]


def test_schedule_svg_is_a_chart_of_every_edge(render, tmp_path: Path) -> None:
    sched = tmp_path / "schedule.svg"
    code, _, err, _ = render(BEST, "--schedule", sched, out="graph.dot")
    assert code == 0, err
    root = ET.parse(sched).getroot()
    # one line per distinct schedule, naming every edge that follows it
    lines = {str(p.get("data-edges")): p for p in root.iter(f"{SVG}polyline")}
    matrix = gate_matrix_edges(BEST)
    drawn = [key for group in lines for key in group.split()]
    assert sorted(drawn) == sorted(k for k, g in matrix.items() if g != "cutoff")
    assert len(lines) == len({g for g in matrix.values() if g != "cutoff"}) == 3
    for group, line in lines.items():
        gates = {matrix[key] for key in group.split()}
        assert len(gates) == 1, group
        points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
        assert len(points) == 2 * 200 - 1, group  # a step per epoch, ending at the last one
        ys = [y for _, y in points]
        if gates == {"positive_linear"}:
            assert ys[0] > ys[-1]  # SVG's y grows downwards: the line rises
        elif gates == {"through"}:
            assert len(set(ys)) == 1
    legend = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "positive_linear: labels → r32a, r32b → r32a, r110 → r32a" in legend
    again = tmp_path / "again.svg"
    render(BEST, "--schedule", again, out="graph2.dot")
    assert again.read_bytes() == sched.read_bytes()


def test_schedule_needs_svg_or_csv(render, tmp_path: Path) -> None:
    code, _, err, out = render(BEST, "--schedule", tmp_path / "s.png", out="g.dot")
    assert code == 2 and ".svg (a chart) or .csv" in err
    assert not out.exists()


# --------------------------------------------------------------------------- the docs


GEOMETRY = {"d", "points", "x", "y", "width", "height", "viewBox", "transform"}


def drawn_content(path: Path) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Every element with its text and attributes, except coordinates: those depend on the
    fonts (and Graphviz version) of the machine, the rest is what the renderer decided."""
    return [
        (
            el.tag,
            (el.text or "").strip(),
            sorted((k, v) for k, v in el.attrib.items() if k not in GEOMETRY),
        )
        for el in ET.parse(path).getroot().iter()
    ]


@needs_dot
@pytest.mark.parametrize("name", sorted(IMAGES))
def test_committed_images_are_what_the_renderer_draws(render, name: str) -> None:
    """Regenerate with: ktg render specs/<spec>.yaml -o docs/images/<spec>.svg"""
    committed = ROOT / "docs" / "images" / name
    code, _, err, fresh = render(IMAGES[name], out=name)
    assert code == 0, err
    assert drawn_content(fresh) == drawn_content(committed), (
        f"docs/images/{name} is stale: regenerate it (see docs/render.md)"
    )


def test_committed_schedule_chart_is_what_the_renderer_draws(render, tmp_path: Path) -> None:
    """Regenerate with: ktg render specs/cifar100-ktg-best.yaml -o graph.dot
    --schedule docs/images/cifar100-ktg-best-schedule.svg"""
    fresh = tmp_path / "schedule.svg"
    code, _, err, _ = render(BEST, "--schedule", fresh, out="graph.dot")
    assert code == 0, err
    committed = ROOT / "docs" / "images" / "cifar100-ktg-best-schedule.svg"
    assert fresh.read_bytes() == committed.read_bytes(), "regenerate it (see docs/render.md)"


def test_render_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from ktg_dsl.cli import main; "
        f"rc = main(['render', {str(BEST)!r}, '-o', {str(tmp_path / 'g.dot')!r}]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_outputs_that_are_not_regular_files_are_never_replaced(cli: Cli, tmp_path: Path) -> None:
    spec = ROOT / "specs" / "quickstart.yaml"
    target = tmp_path / "target.svg"
    target.write_text("old")
    link = tmp_path / "link.svg"
    link.symlink_to(target)
    assert cli("render", spec, "-o", link)[0] == 0
    assert link.is_symlink() and target.read_text().startswith("<?xml")
    code, out, err = cli("render", spec, "-o", "/dev/null", "--format", "dot")
    assert code == 0 and Path("/dev/null").is_char_device()
    code, out, err = cli("render", spec, "-o", "-", "--format", "dot")
    assert code == 0 and out.startswith("digraph") and "wrote -" in err


def test_a_failing_second_output_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    keep = tmp_path / "keep.svg"
    keep.write_text("KEEP")
    code, _, err = cli(
        "render",
        ROOT / "specs" / "quickstart.yaml",
        "-o",
        keep,
        "--schedule",
        tmp_path / "missing" / "s.svg",
    )
    assert code == 1 and "does not exist" in err
    assert keep.read_text() == "KEEP"


def test_a_million_epochs_render_by_sampling(cli: Cli, tmp_path: Path) -> None:
    spec = ROOT / "specs" / "cifar100-ktg-best.yaml"
    out = tmp_path / "g.dot"
    code, _, err = cli(
        "render",
        spec,
        "-o",
        out,
        "--set",
        "train.epochs=1000000",
        "--epoch",
        "999999",
        "--schedule",
        tmp_path / "s.svg",
    )
    assert code == 0, err
    assert "at epoch 999999 of 0..999999" in out.read_text()
    code, _, err = cli(
        "render", spec, "-o", out, "--set", "train.epochs=1000000", "--schedule", tmp_path / "s.csv"
    )
    assert code == 2 and "too long" in err
