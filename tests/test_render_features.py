"""``ktg render`` of feature edges: taps are ports of their nodes, feature edges run from port
to port with their loss on the label, in a look of their own, apart from the logits edge
between the same two nodes; the layout stays put and the schedule names them. Real Graphviz
output, parsed."""

from __future__ import annotations

import csv
import itertools
import math
import re
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
from .test_contact_render import arrow_tip, curve, node_positions, pairs
from .test_render import classes, drawn_content, parse, text

SVG = "{http://www.w3.org/2000/svg}"
FEATURES = ROOT / "specs" / "digits-features.yaml"
CIFAR_FEATURES = ROOT / "specs" / "cifar100-ktg-features.yaml"
SPEC = yaml.safe_load(FEATURES.read_text())
TAPS: dict[str, dict[str, str]] = {n: c.get("taps", {}) for n, c in SPEC["nodes"].items()}
WRITTEN = [(e["from"], e["to"], e) for e in SPEC["edges"]]
FEATURE_KEYS = {f"{s}->{r}": e for s, r, e in WRITTEN if "." in s}
# what each loss of the spec says on its edge (the loss's describe(), at its defaults)
LOSS_TEXT = {"attention": "attention p=2", "hint": "hint", "similarity": "similarity"}

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")
Cli = Callable[..., tuple[int, str, str]]
Point = tuple[float, float]


@pytest.fixture
def render(cli: Cli, tmp_path: Path) -> Callable[..., Path]:
    def run(spec: Path, *args: Any, out: str = "graph.svg") -> Path:
        path = tmp_path / out
        code, _, err = cli("render", spec, "-o", path, *args)
        assert code == 0, err
        return path

    return run


def dot_nodes(source: str) -> dict[str, str]:
    """Node statements of a Graphviz source: name -> the rest of its line."""
    found = re.findall(r"^\t([A-Za-z_][\w-]*|\"[^\"]+\") \[(.*)\]$", source, re.M)
    return {name.strip('"'): rest for name, rest in found}


def dot_edges(source: str) -> list[dict[str, str]]:
    """Edge statements (labels may span lines): tail, head and their attributes."""
    out = []
    for tail, head, attrs in re.findall(r"^\t(\S+) -> (\S+) \[(.*?)\]$", source, re.M | re.S):
        found = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', attrs))
        out.append({"tail": tail, "head": head, **{k: v.strip('"') for k, v in found.items()}})
    return out


def ports_of(statement: str) -> dict[str, str]:
    """The ports of an HTML-like node label: port -> the text of its cell."""
    label = re.match(r"label=<(.*)> ", statement)
    assert label is not None, statement
    table = ET.fromstring(label.group(1))
    return {
        str(td.get("port")): " ".join(t.strip() for t in td.itertext() if t.strip())
        for td in table.iter("td")
        if td.get("port")
    }


def frame(node: ET.Element) -> tuple[float, float, float, float]:
    """A node's outline: (left, top, right, bottom), from its frame's path or polygon."""
    points = [
        p
        for shape in [*node.iter(f"{SVG}path"), *node.iter(f"{SVG}polygon")]
        for p in pairs(shape.get("d") or shape.get("points") or "")
    ]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def cell_span(node: ET.Element, tap: str) -> tuple[float, float]:
    """The x span of the cell that shows a tap's name: between the rules either side of it
    (the rules are the cells' left borders) or the node's right edge."""
    left, _, right, _ = frame(node)
    rules = sorted(float(pairs(p.get("points") or "")[0][0]) for p in node.iter(f"{SVG}polyline"))
    names = [t for t in node.iter(f"{SVG}text") if t.text == tap]
    assert len(names) == 1, tap
    x = float(names[0].get("x", 0))
    edges = [left, *rules, right]
    return next((a, b) for a, b in itertools.pairwise(edges) if a <= x <= b)


def start(edge: ET.Element) -> Point:
    """Where an edge leaves its tail: the first point of its middle line (a double line is
    three paths, the middle one unseen)."""
    paths = list(edge.iter(f"{SVG}path"))
    return pairs(paths[len(paths) // 2].get("d") or "")[0]


def on_side(point: Point, node: ET.Element) -> str:
    """'top' or 'bottom' when the point lies on that side of the node's outline."""
    _, top, _, bottom = frame(node)
    if abs(point[1] - top) < 3:
        return "top"
    assert abs(point[1] - bottom) < 3, (point, top, bottom)
    return "bottom"


# --------------------------------------------------------------------------- ports


def test_every_tap_is_a_port_of_its_node(render) -> None:
    source = render(FEATURES, out="graph.dot").read_text()
    nodes = dot_nodes(source)
    for name, taps in TAPS.items():
        assert taps, name  # the spec gives every node taps
        assert "shape=plain" in nodes[name]
        ports = ports_of(nodes[name])
        # one cell per tap, showing its name and module path, and the logits' cell
        assert set(ports) == {*taps, "ktg-logits"}, name
        for tap, path in taps.items():
            assert ports[tap] == f"{tap} {path}", (name, tap)
        assert ports["ktg-logits"].startswith(name)


@needs_dot
def test_every_feature_edge_runs_from_port_to_port_with_its_loss(render) -> None:
    path = render(FEATURES)
    nodes, edges = parse(path)
    assert FEATURE_KEYS and set(FEATURE_KEYS) <= set(edges)
    for key, written in FEATURE_KEYS.items():
        (sender, s_tap), (receiver, r_tap) = (end.split(".") for end in key.split("->"))
        g = edges[key]
        assert "feature" in classes(g), key
        assert LOSS_TEXT[written["loss"]] in text(g).splitlines(), key
        tail, tip = start(g), arrow_tip(g)
        lo, hi = cell_span(nodes[sender], s_tap)
        assert lo <= tail[0] <= hi, (key, tail, lo, hi)
        lo, hi = cell_span(nodes[receiver], r_tap)
        assert lo <= tip[0] <= hi, (key, tip, lo, hi)
        assert on_side(tail, nodes[sender]) and on_side(tip, nodes[receiver])  # the outline


@needs_dot
def test_downward_feature_edges_leave_below_and_enter_above(render) -> None:
    source = render(FEATURES, out="graph.dot").read_text()
    by_key = {e["tooltip"].split(":")[0]: e for e in dot_edges(source)}
    # wide is a row above mid: out of the bottom of wide's b2, into the top of mid's b2
    assert by_key["wide.b2->mid.b2"]["tailport"] == "b2:s"
    assert by_key["wide.b2->mid.b2"]["headport"] == "b2:n"
    # mid and thin share a row: below both, clear of the row above
    assert by_key["mid.b3->thin.b3"]["tailport"] == "b3:s"
    assert by_key["mid.b3->thin.b3"]["headport"].startswith("b3:s")
    nodes, edges = parse(render(FEATURES))
    assert on_side(start(edges["wide.b2->mid.b2"]), nodes["wide"]) == "bottom"
    assert on_side(arrow_tip(edges["wide.b2->mid.b2"]), nodes["mid"]) == "top"


@needs_dot
def test_a_logits_and_a_feature_edge_between_two_nodes_are_two_edges(render) -> None:
    path = render(FEATURES)
    nodes, edges = parse(path)
    for logits, feature in (("wide->mid", "wide.b2->mid.b2"), ("mid->thin", "mid.b3->thin.b3")):
        one, two = edges[logits], edges[feature]
        assert "feature" not in classes(one) and "feature" in classes(two)
        # a single line and a double line (three paths, the middle one unseen)
        assert len(list(one.iter(f"{SVG}path"))) == 1
        strokes = [p.get("stroke") for p in two.iter(f"{SVG}path")]
        assert len(strokes) == 3 and strokes[1] == "transparent" and strokes[0] == strokes[2]
        # they leave from different cells and arrive at different cells
        assert math.dist(start(one), start(two)) > 20, logits
        assert math.dist(arrow_tip(one), arrow_tip(two)) > 20, logits
        assert curve(one) != curve(two)
    # the logits edge leaves its sender's title cell, left of its taps, from below
    assert start(edges["wide->mid"])[0] < cell_span(nodes["wide"], "b2")[0]
    assert on_side(start(edges["wide->mid"]), nodes["wide"]) == "bottom"


@needs_dot
@pytest.mark.parametrize("spec", [FEATURES, CIFAR_FEATURES], ids=lambda p: p.stem)
def test_arrows_into_a_node_do_not_crowd(render, spec: Path) -> None:
    """Two logits arrows into one title cell, or two feature edges into one tap, from one
    side each get their own point (a first layout finds them: a logits edge and a feature
    edge between the same nodes are told apart there too)."""
    edges = parse(render(spec))[1]
    tips: dict[str, list[Point]] = {}
    for key, g in edges.items():
        tips.setdefault(key.split("->")[1].split(".")[0], []).append(arrow_tip(g))
    for node, points in tips.items():
        for p, q in itertools.combinations(points, 2):
            assert math.dist(p, q) > 10, (spec.stem, node, p, q)


@needs_dot
def test_the_legend_explains_feature_edges_and_ports(render) -> None:
    nodes, _ = parse(render(FEATURES))
    legend = text(nodes["ktg.legend"])
    assert "feature edge: tap → tap, labelled with its loss" in legend
    assert "a port is a tap: an intermediate layer" in legend
    # the peers' logits edges share kl T=2: said once, as logits edges
    assert "every node → node logits edge: kl T=2" in legend
    # a graph without taps says nothing of them
    plain = text(parse(render(ROOT / "specs" / "quickstart.yaml", out="q.svg"))[0]["ktg.legend"])
    assert "feature edge" not in plain and "port" not in plain


# --------------------------------------------------------------------------- layout, --epoch


def with_cutoff_feature_edge(spec_file) -> Path:
    data = yaml.safe_load(FEATURES.read_text())
    data["edges"].append({"to": "mid.b3", "from": "thin.b3", "loss": "hint", "gate": "cutoff"})
    return spec_file(data, "cut.yaml")


def xy(t: ET.Element) -> Point:
    return float(t.get("x", 0)), float(t.get("y", 0))


def tap_positions(path: Path) -> dict[str, Point]:
    """Every text of every model node (names, taps, module paths), relative to the labels
    node's name: the ports do not move either."""
    nodes, _ = parse(path)
    first = nodes["labels"].find(f".//{SVG}text")
    assert first is not None
    lx, ly = xy(first)
    return {
        f"{name}:{t.text}": (round(xy(t)[0] - lx, 1), round(xy(t)[1] - ly, 1))
        for name, g in nodes.items()
        if "model" in classes(g)
        for t in g.iter(f"{SVG}text")
    }


@pytest.mark.slow
@needs_dot
def test_nodes_and_ports_stay_put_across_epochs_and_with_cutoff_edges(render, spec_file) -> None:
    variants = [[], ["--show-cutoff"], ["--epoch", "0"], ["--epoch", "19"]]
    variants.append(["--show-cutoff", "--epoch", "9"])
    for spec in (FEATURES, CIFAR_FEATURES, with_cutoff_feature_edge(spec_file)):
        paths = [render(spec, *v, out=f"{spec.stem}{i}.svg") for i, v in enumerate(variants)]
        nodes = [node_positions(p) for p in paths]
        ports = [tap_positions(p) for p in paths]
        assert len(nodes[0]) == 5 and len(ports[0]) > 12, spec.name
        for args, seen, at in zip(variants[1:], nodes[1:], ports[1:], strict=True):
            assert seen == nodes[0], (spec.name, args)
            assert at == ports[0], (spec.name, args)


@needs_dot
def test_show_cutoff_draws_a_cutoff_feature_edge_faint_between_ports(render, spec_file) -> None:
    spec = with_cutoff_feature_edge(spec_file)
    assert "thin.b3->mid.b3" not in parse(render(spec))[1]
    nodes, edges = parse(render(spec, "--show-cutoff", out="shown.svg"))
    cut = edges["thin.b3->mid.b3"]
    assert {"gate-cutoff", "feature"} <= classes(cut)
    lo, hi = cell_span(nodes["thin"], "b3")
    assert lo <= start(cut)[0] <= hi


@needs_dot
def test_epoch_draws_feature_edge_weights_like_logits_edges(render) -> None:
    key = "wide.b2->mid.b2"  # negative_linear: 1 at epoch 0, 0 at the last
    first = parse(render(FEATURES, "--epoch", "0", out="e0.svg"))[1]
    last = parse(render(FEATURES, "--epoch", "19", out="e19.svg"))[1]
    assert "w=1" in text(first[key]).splitlines() and "w=0" in text(last[key]).splitlines()

    def pen(g: ET.Element) -> float:
        return max(float(p.get("stroke-width", "1")) for p in g.iter(f"{SVG}path"))

    def opacity(g: ET.Element) -> float:
        seen = [p for p in g.iter(f"{SVG}path") if p.get("stroke") != "transparent"]
        return max(float(p.get("stroke-opacity", "1")) for p in seen)

    assert pen(first[key]) > pen(last[key]) and opacity(last[key]) < 0.3 <= opacity(first[key])
    # through: the same at both ends of the run, as its logits neighbour
    assert "w=1" in text(last["wide.b3->thin.b3"]).splitlines()
    assert pen(first["wide.b3->thin.b3"]) == pen(last["wide.b3->thin.b3"])


# --------------------------------------------------------------------------- the schedule


def test_the_schedule_csv_has_a_column_per_feature_edge(render, tmp_path: Path) -> None:
    sched = tmp_path / "s.csv"
    render(FEATURES, "--schedule", sched, out="g.dot")
    rows = list(csv.DictReader(sched.read_text().splitlines()))
    assert set(rows[0]) == {"epoch", *(f"{s}->{r}" for s, r, _ in WRITTEN)}
    epochs = SPEC["train"]["epochs"]
    for key, written in FEATURE_KEYS.items():
        falling = written.get("gate") == "negative_linear"
        expect = [1 - e / (epochs - 1) if falling else 1.0 for e in range(epochs)]
        assert [float(r[key]) for r in rows] == pytest.approx(expect), key


def test_the_schedule_chart_names_feature_edges(render, tmp_path: Path) -> None:
    sched = tmp_path / "s.svg"
    render(FEATURES, "--schedule", sched, out="g.dot")
    root = ET.parse(sched).getroot()
    drawn = [k for p in root.iter(f"{SVG}polyline") for k in str(p.get("data-edges")).split()]
    assert sorted(drawn) == sorted(f"{s}->{r}" for s, r, _ in WRITTEN)
    legend = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "negative_linear: wide.b2 → mid.b2, mid.b3 → thin.b3" in legend


# --------------------------------------------------------------------------- files


@needs_dot
def test_same_spec_same_bytes(render) -> None:
    for fmt in ("svg", "dot"):
        one = render(FEATURES, "--epoch", "3", out=f"one.{fmt}").read_bytes()
        assert one == render(FEATURES, "--epoch", "3", out=f"two.{fmt}").read_bytes(), fmt


def test_the_source_has_the_ports_without_graphviz(render, monkeypatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    source = render(FEATURES, out="graph.dot").read_text()
    by_key = {e["tooltip"].split(":")[0]: e for e in dot_edges(source)}
    assert by_key["wide.b3->thin.b3"]["tailport"] == "b3:s"
    assert by_key["wide.b3->thin.b3"]["headport"] == "b3:n"
    assert by_key["wide->mid"]["tailport"] == "ktg-logits:s"


@needs_dot
def test_hyphenated_node_names_keep_their_edge_names(render, spec_file) -> None:
    data = base_spec(nodes={n: {"model": "small_cnn", "taps": {"f3": "block3"}} for n in "ab"})
    data["nodes"] = {"net-a": data["nodes"]["a"], "net-b": data["nodes"]["b"]}
    data["edges"] = [
        {"to": "net-a", "from": "labels"},
        {"to": "net-b", "from": "labels"},
        {"to": "net-b", "from": "net-a"},
        {"to": "net-b.f3", "from": "net-a.f3", "loss": "attention"},
    ]
    _, edges = parse(render(spec_file(data)))
    assert set(edges) == {"labels->net-a", "labels->net-b", "net-a->net-b", "net-a.f3->net-b.f3"}


@needs_dot
def test_committed_picture_is_what_the_renderer_draws(render) -> None:
    """Regenerate with: ktg render specs/digits-features.yaml -o docs/images/digits-features.svg"""
    committed = ROOT / "docs" / "images" / "digits-features.svg"
    fresh = render(FEATURES, out="digits-features.svg")
    assert drawn_content(fresh) == drawn_content(committed), "regenerate it (see docs/render.md)"


def test_render_of_feature_edges_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from ktg_dsl.cli import main; "
        f"rc = main(['render', {str(FEATURES)!r}, '-o', {str(tmp_path / 'g.dot')!r}, "
        f"'--schedule', {str(tmp_path / 's.svg')!r}]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
