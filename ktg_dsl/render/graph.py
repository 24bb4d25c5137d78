"""``ktg render``: the graph as a picture read at a glance.

Nodes are the models (frozen teachers and the search objective marked) and a ``labels`` source;
an edge's look says its gate kind without a legend: solid = through, a blue ramp and ``↗`` =
rising, an orange ramp and ``↘`` = falling, green dotted ``✓`` = correct, purple dashed =
parametric, faint grey dotted = cutoff (only with ``show_cutoff``). ``epoch=E`` draws each
edge with the weight it has at epoch E. The same spec always gives the same bytes: everything is
iterated in spec order and no time or path goes into the output. No torch here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import graphviz

from ..components.gates import spread
from ..graph import GraphEdge, GraphReport
from ..registry import LOSSES, MODELS
from ..spec.components import resolved_args
from ..spec.schema import LABELS, Spec
from .weights import SAMPLED_EPOCHS, epoch_weight, weights_over_epochs

FONT = "Helvetica,Arial,sans-serif"
LEGEND = "ktg.legend"  # a dot is not allowed in node names, so this id never clashes
SPARKS = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 8


@dataclass(frozen=True)
class Look:
    """How one gate kind is drawn: colours along the edge (tail to head), line style, glyph."""

    colors: tuple[str, ...]
    style: str
    glyph: str
    legend: str


LOOKS: dict[str, Look] = {
    "through": Look(("#333333",), "solid", "", "through: always 1"),
    "rising": Look(("#a6c8e8", "#4a90d0", "#0b4f9c"), "solid", "↗", "rising over training"),
    "falling": Look(("#f5c49a", "#e8803a", "#b34700"), "solid", "↘", "falling over training"),
    "correct": Look(("#1a9e5c",), "dotted", "✓", "correct: 1 where the sender is right"),
    "parametric": Look(("#8e44ad",), "dashed", "", "parametric (see label)"),
    "cutoff": Look(("#c8c8c8",), "dotted", "", "cut off: never computed"),
}


def kind(e: GraphEdge) -> str:
    """How an edge is drawn: its gate's style (parametric when the gate did not build)."""
    return e.gate.style if e.gate is not None else "parametric"


def drawn_edges(spec: Spec, report: GraphReport, show_cutoff: bool = False) -> list[GraphEdge]:
    """The edges to draw, in gate-matrix order: by receiver, the labels edge first."""
    order = {name: i for i, name in enumerate(spec.node_names)}
    out = [e for e in report.edges if show_cutoff or not e.closed]
    return sorted(out, key=lambda e: (order[e.receiver], order.get(e.sender, -1)))


def sparkline(values: list[float], top: float) -> str:
    """~8 evenly spaced samples as block characters; empty for a constant series."""
    if not values or max(values) == min(values):
        return ""
    n = len(values)
    picks = spread(n, SPARK_POINTS)
    levels = len(SPARKS) - 1
    return "".join(SPARKS[round(min(values[i] / top, 1.0) * levels)] for i in picks)


def _fmt(w: float) -> str:
    return f"{w:.2f}".rstrip("0").rstrip(".") if w else "0"


def _params(spec: Spec, report: GraphReport, name: str) -> str | None:
    """'0.47 M params' when the model can count itself without being built, else None."""
    ref = spec.nodes[name].model
    shape = report.data_info.input_shape if report.data_info else None
    in_channels = shape[0] if shape else None
    classes = report.class_counts.get(name)
    try:
        count = MODELS.get(ref.type).meta.get("param_count")
        if count is None or in_channels is None or classes is None:
            return None
        n = int(count(num_classes=classes, in_channels=in_channels, **resolved_args(ref)))
    except (ValueError, TypeError, KeyError):
        return None
    return f"{n / 1e6:.2f} M params" if n >= 100_000 else f"{n / 1e3:.1f} k params"


def _loss_label(e: GraphEdge) -> str:
    """The loss, unless it is the usual one (ce on labels edges, kl at T=1 between nodes)."""
    try:
        text = str(LOSSES.get(e.loss_ref.type).build(e.loss_ref.args).describe())
    except Exception:
        text = str(e.loss_ref)
    return "" if text == ("ce" if e.is_labels else "kl T=1") else text


def _objective(spec: Spec) -> str | None:
    if spec.search is None:
        return None
    return spec.search.objective.node or spec.node_names[0]


def _node_label(spec: Spec, report: GraphReport, name: str) -> str:
    rows = [f"<b>{html.escape(name)}</b>", html.escape(str(spec.nodes[name].model))]
    params = _params(spec, report, name)
    if params:
        rows.append(f'<font point-size="10" color="#555555">{params}</font>')
    if name in report.frozen:
        rows.append('<font point-size="10" color="#444444"><i>frozen teacher</i></font>')
    if name == _objective(spec):
        rows.append('<font point-size="10" color="#9a6b00"><b>★ search objective</b></font>')
    return "<" + "<br/>".join(rows) + ">"


def _alpha(color: str, opacity: float) -> str:
    return f"{color}{round(255 * opacity):02x}"


def _edge_attrs(
    d: GraphEdge, series: list[float], top: float, epoch: int | None, spec: Spec
) -> dict[str, str]:
    look = LOOKS["cutoff" if d.closed else kind(d)]
    gate_text = d.gate.describe() if d.gate is not None else str(d.gate_ref)
    lines = []
    if kind(d) != "through" or d.closed:
        lines.append(" ".join(p for p in (look.glyph, gate_text) if p))
    if d.gate is not None and d.gate.per_sample:
        lines.append("(per sample)")
    if loss := _loss_label(d):
        lines.append(loss)
    if not d.closed and (spark := sparkline(series, top)):
        lines.append(spark)
    width, opacity = 2.0, 1.0
    if epoch is not None and not d.closed:
        w = epoch_weight(d.gate, epoch, spec)
        lines.append(f"w={_fmt(w)}")
        share = min(w / top, 1.0)
        # weight 0 still shows (faint), so the edge does not vanish from the picture
        width, opacity = (0.8, 0.25) if w == 0 else (1.0 + 3.5 * share, 0.45 + 0.55 * share)
    if d.closed:
        width = 1.0
    n = len(look.colors)
    colors = [_alpha(c, opacity) if opacity < 1 else c for c in look.colors]
    color = colors[0] if n == 1 else ":".join(f"{c};{1 / n:.3f}" for c in colors)
    attrs = {
        "color": color,
        "fontcolor": colors[-1],
        "style": look.style,
        "penwidth": f"{width:.2f}",
        "arrowsize": "0.8",
        "class": f"gate-{'cutoff' if d.closed else kind(d)}",
        "tooltip": f"{d.key}: {gate_text}, {d.loss_ref}",
    }
    if lines:
        attrs["label"] = "\n".join(lines)
        attrs["fontsize"] = "11"
    if d.closed:
        attrs["constraint"] = "false"
    return attrs


def _legend(kinds: list[str], marks: list[tuple[str, str]]) -> str:
    rows = ['<tr><td colspan="2" align="left"><b>legend</b></td></tr>']
    for kind in kinds:
        look = LOOKS[kind]
        stroke = {"solid": "━━", "dotted": "┈┈", "dashed": "╍╍"}[look.style]
        sample = f'<font color="{look.colors[-1]}">{stroke}{look.glyph}</font>'
        rows.append(f'<tr><td align="left">{sample}</td><td align="left">{look.legend}</td></tr>')
    for sample, text in marks:
        rows.append(f'<tr><td align="left">{sample}</td><td align="left">{text}</td></tr>')
    body = "".join(rows)
    return (
        '<<font point-size="9"><table border="1" color="#cccccc" cellborder="0" cellspacing="0" '
        f'cellpadding="2">{body}</table></font>>'
    )


def _add_nodes(dot: graphviz.Digraph, spec: Spec, report: GraphReport) -> None:
    dot.node(
        LABELS,
        '<<b>labels</b><br/><font point-size="10">ground truth</font>>',
        shape="cylinder",
        style="filled",
        fillcolor="#fff4c2",
        color="#b59a2e",
        **{"class": "labels"},
    )
    for name in spec.node_names:
        frozen = name in report.frozen
        objective = name == _objective(spec)
        classes = ["model", *(["frozen"] if frozen else []), *(["objective"] if objective else [])]
        dot.node(
            name,
            _node_label(spec, report, name),
            shape="box",
            style="filled" if frozen else "rounded,filled",
            fillcolor="#dcdcdc" if frozen else "#e3f0fb",
            color="#9a6b00" if objective else ("#666666" if frozen else "#3c78b4"),
            penwidth="2.5" if objective else "1.2",
            peripheries="2" if frozen else "1",
            **{"class": " ".join(classes)},
        )


def _add_legend(
    dot: graphviz.Digraph,
    spec: Spec,
    report: GraphReport,
    edges: list[GraphEdge],
    epoch: int | None,
) -> None:
    kinds = sorted({"cutoff" if d.closed else kind(d) for d in edges}, key=list(LOOKS).index)
    marks = []
    if report.frozen:
        marks.append(('<font color="#888888">■</font>', "frozen teacher: never trains"))
    if _objective(spec):
        marks.append(('<font color="#9a6b00">★</font>', "the search objective"))
    if epoch is not None:
        marks.append(("w=", f"weight at epoch {epoch} (also the width)"))
    dot.node(LEGEND, _legend(kinds, marks), shape="plaintext", **{"class": "legend"})


def build_dot(
    spec: Spec, report: GraphReport, *, epoch: int | None = None, show_cutoff: bool = False
) -> graphviz.Digraph:
    """The graph as Graphviz source (no Graphviz program needed to build it)."""
    edges = drawn_edges(spec, report, show_cutoff)
    _, table = weights_over_epochs(spec, edges, SAMPLED_EPOCHS)
    top = max([1.0, *(w for row in table for w in row)])
    epochs = spec.train.epochs
    when = f"at epoch {epoch} of 0..{epochs - 1}" if epoch is not None else f"{epochs} epochs"
    dot = graphviz.Digraph(spec.name)
    dot.attr(
        "graph",
        label=f"{spec.name} — {when}",
        labelloc="t",
        fontname=FONT,
        fontsize="14",
        rankdir="TB",
        nodesep="0.6",
        ranksep="0.7",
        newrank="true",
    )
    dot.attr("node", fontname=FONT, fontsize="12")
    dot.attr("edge", fontname=FONT)
    _add_nodes(dot, spec, report)
    for i, d in enumerate(edges):
        series = [row[i] for row in table]
        dot.edge(d.sender, d.receiver, **_edge_attrs(d, series, top, epoch, spec))

    _add_legend(dot, spec, report, edges, epoch)
    return dot


# --------------------------------------------------------------------------- the schedule
