"""``ktg render`` at first contact, measured on real Graphviz output: the layout does not move
between ``--epoch`` values or with ``--show-cutoff``, each label belongs to one edge, arrows
do not crowd, a shared loss is said once, ``-o -`` is SVG, an output never replaces an input,
and the schedule chart draws one distinguishable line per schedule up to the last epoch."""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, base_spec

SVG = "{http://www.w3.org/2000/svg}"
BEST = ROOT / "specs" / "cifar100-ktg-best.yaml"
QUICKSTART = ROOT / "specs" / "quickstart.yaml"
DML = ROOT / "specs" / "cifar100-dml.yaml"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")
Cli = Callable[..., tuple[int, str, str]]
Point = tuple[float, float]


def groups(path: Path, kind: str) -> dict[str, ET.Element]:
    """Graphviz's <g class="node"> / "edge" elements by their <title>."""
    root = ET.parse(path).getroot()
    out = {}
    for g in root.iter(f"{SVG}g"):
        if (g.get("class") or "").split(" ")[0] == kind:
            title = g.find(f"{SVG}title")
            assert title is not None and title.text is not None
            out[title.text] = g
    return out


def node_positions(path: Path) -> dict[str, Point]:
    """Where each node's name is drawn, relative to the labels node: a weight label at the
    edge of the picture may widen it by a few points, which moves the whole drawing, not its
    nodes relative to each other."""
    root = ET.parse(path).getroot()
    graph = root.find(f"{SVG}g")
    assert graph is not None
    move = re.search(r"translate\(([-\d.]+) ([-\d.]+)\)", graph.get("transform") or "")
    assert move is not None
    dx, dy = float(move.group(1)), float(move.group(2))
    out = {}
    for name, g in groups(path, "node").items():
        text = g.find(f".//{SVG}text")
        assert text is not None
        out[name] = (float(text.get("x", 0)) + dx, float(text.get("y", 0)) + dy)
    x0, y0 = out["labels"]
    return {name: (round(x - x0, 1), round(y - y0, 1)) for name, (x, y) in out.items()}


def pairs(text: str) -> list[Point]:
    return [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", text)]


def curve(edge: ET.Element) -> list[Point]:
    """Points along an edge's drawn spline (Graphviz writes M p0 C p1 p2 p3 p4 p5 p6 ...;
    an edge of several colours is several such paths)."""
    out = []
    for path in edge.iter(f"{SVG}path"):
        out += _bezier(pairs(path.get("d") or ""))
    return out


def _bezier(pts: list[Point]) -> list[Point]:
    out = [pts[0]]
    for i in range(1, len(pts) - 2, 3):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        for k in range(1, 21):
            t = k / 20
            out.append(
                (
                    (1 - t) ** 3 * p0[0]
                    + 3 * (1 - t) ** 2 * t * p1[0]
                    + 3 * (1 - t) * t**2 * p2[0]
                    + t**3 * p3[0],
                    (1 - t) ** 3 * p0[1]
                    + 3 * (1 - t) ** 2 * t * p1[1]
                    + 3 * (1 - t) * t**2 * p2[1]
                    + t**3 * p3[1],
                )
            )
    return out


def distance(p: Point, points: list[Point]) -> float:
    return min(math.dist(p, q) for q in points)


def arrow_tip(edge: ET.Element) -> Point:
    line = curve(edge)
    head = next(edge.iter(f"{SVG}polygon"))
    return max(pairs(head.get("points") or ""), key=lambda p: math.dist(p, line[-1]))


@pytest.fixture
def render(cli: Cli, tmp_path: Path) -> Callable[..., Path]:
    def run(spec: Path, *args: Any, out: str = "graph.svg") -> Path:
        path = tmp_path / out
        code, _, err = cli("render", spec, "-o", path, *args)
        assert code == 0, err
        return path

    return run


# --------------------------------------------------------------------------- the layout


@needs_dot
@pytest.mark.parametrize("spec", [BEST, QUICKSTART, DML], ids=lambda p: p.stem)
def test_nodes_stay_put_across_epochs_and_with_cutoff_edges(render, spec: Path) -> None:
    variants = [[], ["--show-cutoff"], ["--epoch", "0"], ["--epoch", "29"]]
    variants.append(["--show-cutoff", "--epoch", "17"])
    places = [node_positions(render(spec, *v, out=f"v{i}.svg")) for i, v in enumerate(variants)]
    assert len(places[0]) >= 4
    for args, seen in zip(variants[1:], places[1:], strict=True):
        assert seen == places[0], args


@needs_dot
def test_many_cutoff_edges_move_nothing(render, spec_file) -> None:
    names = ["a", "b", "c", "d"]
    gates = {("b", "a"): "through", ("c", "b"): "positive_linear", ("d", "a"): "through"}
    matrix = [
        [
            "through" if r == c else gates.get((names[r], names[c]), "cutoff")
            for c in range(len(names))
        ]
        for r in range(len(names))
    ]
    data = base_spec(nodes={n: {"model": "small_cnn"} for n in names}, gate_matrix=matrix)
    del data["edges"]
    path = spec_file(data)
    hidden = render(path, out="hidden.svg")
    shown = render(path, "--show-cutoff", out="shown.svg")
    assert len(groups(shown, "edge")) == 16 > len(groups(hidden, "edge")) == 7
    assert node_positions(shown) == node_positions(hidden)


@needs_dot
def test_arrows_into_a_node_do_not_crowd(render) -> None:
    for spec in (QUICKSTART, DML, BEST):
        edges = groups(render(spec, out=f"{spec.stem}.svg"), "edge")
        heads: dict[str, list[Point]] = {}
        for key, edge in edges.items():
            heads.setdefault(key.split("->")[1], []).append(arrow_tip(edge))
        for node, tips in heads.items():
            for p, q in itertools.combinations(tips, 2):
                assert math.dist(p, q) > 10, (spec.name, node, p, q)


@needs_dot
def test_each_label_of_a_mutual_pair_points_at_its_own_curve(render, spec_file) -> None:
    data = base_spec(train={"epochs": 10})
    data["edges"][2]["gate"] = "positive_linear"  # b -> a
    data["edges"][3].update(gate="negative_linear", loss={"type": "kl", "temperature": 3})
    edges = groups(render(spec_file(data)), "edge")
    for key, partner in (("b->a", "a->b"), ("a->b", "b->a")):
        own, other = curve(edges[key]), curve(edges[partner])
        lines = list(edges[key].iter(f"{SVG}polyline"))
        assert len(lines) == 1, key  # a line from the label to its edge
        end = pairs(lines[0].get("points") or "")[-1]
        assert distance(end, own) < 2 < distance(end, other), key
        label = [t.text for t in edges[key].iter(f"{SVG}text")]
        assert label[0] in ("↗ positive_linear", "↘ negative_linear"), label


@needs_dot
def test_a_loss_shared_by_every_peer_edge_is_said_once(render, spec_file) -> None:
    data = base_spec(defaults={"loss": {"type": "kl", "temperature": 2.9442}})
    path = render(spec_file(data))
    edges = groups(path, "edge")
    assert all(
        "T=2.9442" not in "".join(t.text or "" for t in e.iter(f"{SVG}text"))
        for e in edges.values()
    )
    legend = "".join(t.text or "" for t in groups(path, "node")["ktg.legend"].iter(f"{SVG}text"))
    assert "every node → node edge: kl T=2.9442" in legend
    # when the edges differ, each says its own
    data["edges"][2]["loss"] = {"type": "kl", "temperature": 4}
    edges = groups(render(spec_file(data, "two.yaml"), out="two.svg"), "edge")
    texts = {k: "".join(t.text or "" for t in e.iter(f"{SVG}text")) for k, e in edges.items()}
    assert texts["b->a"] == "kl T=4" and texts["a->b"] == "kl T=2.9442"


# --------------------------------------------------------------------------- outputs


def test_stdout_is_svg_unless_told_otherwise(cli: Cli) -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz 'dot' not installed")
    code, out, err = cli("render", QUICKSTART, "-o", "-")
    assert code == 0, err
    assert out.lstrip().startswith("<?xml") and "<svg" in out
    assert err.strip() == "wrote - (3 nodes, 9 edges)"
    code, out, _ = cli("render", QUICKSTART, "-o", "-", "--format", "dot")
    assert code == 0 and out.startswith("digraph")


def test_an_output_never_replaces_an_input(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(QUICKSTART.read_text())
    before = spec.read_bytes()
    (tmp_path / "link.yaml").symlink_to(spec)
    os.link(spec, tmp_path / "hard.yaml")
    (tmp_path / "sub").mkdir()
    for args in (
        ["-o", spec, "--format", "dot"],
        ["-o", tmp_path / "sub" / ".." / "spec.yaml", "--format", "dot"],
        ["-o", tmp_path / "link.yaml", "--format", "dot"],
        ["-o", tmp_path / "hard.yaml", "--format", "dot"],
        ["-o", tmp_path / "g.dot", "--schedule", spec],
    ):
        code, out, err = cli("render", spec, *args)
        assert code == 2, args
        assert "is the spec" in err and "would replace it" in err, err
        assert "Traceback" not in err and out == ""
        assert spec.read_bytes() == before
    assert not (tmp_path / "g.dot").exists()
    code, _, err = cli("render", spec, "-o", tmp_path / "g.svg", "--schedule", tmp_path / "g.svg")
    assert code == 2 and "is the -o output" in err
    assert not (tmp_path / "g.svg").exists()


# --------------------------------------------------------------------------- the schedule


def _luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_the_schedule_draws_distinct_lines_up_to_the_last_epoch(cli: Cli, tmp_path: Path) -> None:
    sched = tmp_path / "s.svg"
    data = base_spec(train={"epochs": 200})
    data["nodes"]["c"] = {"model": "small_cnn"}
    gates = ["through", "positive_linear", "negative_linear", "correct", "cutoff"]
    gates += [{"type": "cosine", "start": 0, "end": 1}, {"type": "step", "at": 0.5}]
    gates += [{"type": "linear", "start": 0.2, "end": 0.6}, {"type": "positive_gamma", "gamma": 2}]
    names = list(data["nodes"])
    matrix = [[gates[3 * r + c] for c in range(3)] for r in range(3)]
    data["gate_matrix"] = matrix
    del data["edges"]
    spec = tmp_path / "spec.yaml"
    spec.write_text(__import__("yaml").safe_dump(data))
    code, _, err = cli("render", spec, "-o", tmp_path / "g.dot", "--schedule", sched)
    assert code == 0, err
    root = ET.parse(sched).getroot()
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 8  # 9 edges, one cut off; through and correct never share a line
    looks = {(p.get("stroke"), p.get("stroke-dasharray")) for p in lines}
    assert len(looks) == len(lines)
    for p in lines:
        stroke = str(p.get("stroke"))
        assert (1.05) / (_luminance(stroke) + 0.05) >= 3, stroke  # readable on white
        assert float(p.get("stroke-width", "1")) >= 2
    # the epoch axis ends at the last epoch: its tick is 199, and every line ends there
    ticks = [t for t in root.iter(f"{SVG}text") if re.fullmatch(r"\d+", t.text or "")]
    xs = {t.text: float(t.get("x", 0)) for t in ticks if t.get("text-anchor") == "middle"}
    assert "199" in xs and "200" not in xs
    for p in lines:
        assert pairs(p.get("points") or "")[-1][0] == pytest.approx(xs["199"], abs=0.1)
    assert names  # the nodes of the matrix


def test_identical_schedules_share_one_line_naming_every_edge(cli: Cli, tmp_path: Path) -> None:
    sched = tmp_path / "s.svg"
    code, _, err = cli("render", DML, "-o", tmp_path / "g.dot", "--schedule", sched)
    assert code == 0, err
    root = ET.parse(sched).getroot()
    (line,) = root.iter(f"{SVG}polyline")
    assert len(str(line.get("data-edges")).split()) == 9
    legend = [t.text or "" for t in root.iter(f"{SVG}text")]
    text = " ".join(legend)
    assert "through: labels → r32a, r32b → r32a, r110 → r32a" in text and "r32b → r110" in text
    assert max(len(t) for t in legend) < 100  # wrapped, not one endless line


def test_epoch_ticks_end_at_the_last_epoch() -> None:
    from ktg_dsl.render.schedule import epoch_ticks

    assert epoch_ticks(199) == [0, 50, 100, 150, 199]
    assert epoch_ticks(29) == [0, 10, 20, 29]
    assert epoch_ticks(101) == [0, 50, 101]  # 100 is too close to 101 to write both
    assert epoch_ticks(1) == [0, 1] and epoch_ticks(0) == [0]


def test_a_one_epoch_schedule_is_a_flat_line(cli: Cli, tmp_path: Path, spec_file) -> None:
    sched = tmp_path / "one.svg"
    code, _, err = cli(
        "render",
        spec_file(base_spec(train={"epochs": 1})),
        "-o",
        tmp_path / "g.dot",
        "--schedule",
        sched,
    )
    assert code == 0, err
    (line,) = ET.parse(sched).getroot().iter(f"{SVG}polyline")
    points = pairs(line.get("points") or "")
    assert len(points) == 2 and points[0][1] == points[1][1] and points[0][0] < points[1][0]
