"""``ktg render``: the graph as a picture read at a glance.

Nodes are the models (frozen teachers and the search objective marked) and a ``labels`` source;
an edge's look says its gate kind (see ``looks``). The layout is the same whatever is asked of
the picture: cut-off edges are always laid out (invisible unless ``show_cutoff``), the weight at
``epoch`` is a label at the arrow's head, which Graphviz places after the layout, and the
legend does not depend on either; so nodes never move between ``--epoch`` values or with
``--show-cutoff``. The same spec always gives the same bytes: everything is iterated in spec
order and no time or path goes into the output. No torch here.
"""

from __future__ import annotations

import html

import graphviz

from ..graph import GraphEdge, GraphReport
from ..registry import MODELS
from ..spec.components import resolved_args
from ..spec.schema import LABELS, Spec
from .looks import (
    FONT,
    LOOKS,
    fmt_weight,
    gate_text,
    label_lines,
    legend_html,
    look_of,
    shared_losses,
)
from .weights import SAMPLED_EPOCHS, epoch_weight, weights_over_epochs

LEGEND = "ktg.legend"  # a dot is not allowed in node names, so this id never clashes


def drawn_edges(spec: Spec, report: GraphReport, show_cutoff: bool = False) -> list[GraphEdge]:
    """The edges to draw, in gate-matrix order: by receiver, the labels edge first."""
    order = {name: i for i, name in enumerate(spec.node_names)}
    out = [e for e in report.edges if show_cutoff or not e.closed]
    return sorted(out, key=lambda e: (order[e.receiver], order.get(e.sender, -1)))


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


def _pen(d: GraphEdge, top: float, weight: float | None) -> tuple[float, float]:
    """Pen width and opacity: by the weight at the epoch drawn (weight 0 still shows, faint,
    so the edge does not vanish from the picture)."""
    if d.closed:
        return 1.0, 1.0
    if weight is None:
        return 2.0, 1.0
    share = min(weight / top, 1.0)
    return (0.8, 0.25) if weight == 0 else (1.0 + 3.5 * share, 0.45 + 0.55 * share)


def _edge_attrs(d: GraphEdge, lines: list[str], weight: float | None, top: float) -> dict[str, str]:
    look = LOOKS[look_of(d)]
    width, opacity = _pen(d, top, weight)
    n = len(look.colors)
    colors = [_alpha(c, opacity) if opacity < 1 else c for c in look.colors]
    attrs = {
        "color": colors[0] if n == 1 else ":".join(f"{c};{1 / n:.3f}" for c in colors),
        "fontcolor": colors[-1],
        "style": look.style,
        "penwidth": f"{width:.2f}",
        "arrowsize": "0.8",
        "class": f"gate-{look_of(d)}",
        "tooltip": f"{d.key}: {gate_text(d)}, {d.loss_ref}",
    }
    if lines:
        attrs["label"] = "\n".join(lines)
        attrs["fontsize"] = "11"
    if weight is not None:  # at the receiving end: placed after the layout, so nodes stay
        attrs |= {"headlabel": f"w={fmt_weight(weight)}", "labelfontsize": "10"}
        attrs |= {"labelfontcolor": look.colors[-1], "labeldistance": "2.2"}
    return attrs


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


def _legend(spec: Spec, report: GraphReport, edges: list[GraphEdge]) -> str:
    """The legend of every edge laid out (cut-off ones too, drawn or not): the same whatever
    --epoch and --show-cutoff ask, so that it never moves the nodes."""
    kinds = sorted({look_of(d) for d in edges}, key=list(LOOKS).index)
    marks = []
    for labels, loss in shared_losses(edges).items():
        which = "every labels edge" if labels else "every node → node edge"
        marks.append(("loss", f"{which}: {html.escape(loss)}"))
    if report.frozen:
        marks.append(('<font color="#888888">■</font>', "frozen teacher: never trains"))
    if _objective(spec):
        marks.append(('<font color="#9a6b00">★</font>', "the search objective"))
    return legend_html(kinds, marks)


def _layers(spec: Spec, report: GraphReport, edges: list[GraphEdge]) -> dict[str, int]:
    """Each node's row: the labels and frozen teachers on top (0), then each group of nodes
    joined by node -> node edges from its first node (1) down, a row per hop. Peers a hop
    from the same node share a row, so a mutual graph is a triangle rather than a chain whose
    arrows crowd at its ends."""
    trains = [n for n in spec.node_names if n not in report.frozen]
    near: dict[str, list[str]] = {n: [] for n in trains}
    for e in edges:
        if e.sender in near and e.receiver in near:
            near[e.sender].append(e.receiver)
            near[e.receiver].append(e.sender)
    depth = {LABELS: 0, **dict.fromkeys(report.frozen, 0)}
    for root in trains:
        if root in depth:
            continue
        depth[root], queue = 1, [root]
        for n in queue:
            for m in near[n]:
                if m not in depth:
                    depth[m] = depth[n] + 1
                    queue.append(m)
    return depth


def _add_layers(dot: graphviz.Digraph, depth: dict[str, int], edges: list[GraphEdge]) -> None:
    """Rows of equal depth share a rank; a row hangs below the one before it through an edge
    that goes down, or an invisible one where every edge between them goes up."""
    rows: dict[int, list[str]] = {}
    for name, d in depth.items():
        rows.setdefault(d, []).append(name)
    for d in sorted(rows):
        if len(rows[d]) > 1:
            with dot.subgraph() as row:
                row.attr(rank="same")
                for name in rows[d]:
                    row.node(name)
    down = {e.receiver for e in edges if depth[e.sender] == depth[e.receiver] - 1}
    for name, d in depth.items():
        if d > 1 and name not in down:
            parent = next(m for m in rows[d - 1] if m in depth)
            dot.edge(parent, name, style="invis")


def _mutual(edges: list[GraphEdge]) -> set[str]:
    """Keys of node -> node edges whose reverse edge is drawn too."""
    pairs = {(d.sender, d.receiver) for d in edges}
    return {d.key for d in edges if (d.receiver, d.sender) in pairs}


def build_dot(
    spec: Spec,
    report: GraphReport,
    *,
    epoch: int | None = None,
    show_cutoff: bool = False,
    ports: dict[str, str] | None = None,
) -> graphviz.Digraph:
    """The graph as Graphviz source (no Graphviz program needed to build it). ``ports``:
    where arrows enter their nodes (see ``ports.head_ports``), by edge key."""
    ports = ports or {}
    edges = drawn_edges(spec, report, show_cutoff=True)  # laid out always: the layout is fixed
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
        nodesep="0.8",
        ranksep="0.8",
        newrank="true",
    )
    dot.attr("node", fontname=FONT, fontsize="12", margin="0.25,0.08")
    dot.attr("edge", fontname=FONT)
    _add_nodes(dot, spec, report)
    shared, mutual = shared_losses(edges), _mutual([d for d in edges if not d.closed])
    depth = _layers(spec, report, edges)
    _add_layers(dot, depth, edges)
    for i, d in enumerate(edges):
        lines = label_lines(d, [row[i] for row in table], top, shared)
        weight = None if epoch is None or d.closed else epoch_weight(d.gate, epoch, spec)
        attrs = _edge_attrs(d, lines, weight, top)
        if depth[d.sender] > depth[d.receiver]:
            attrs["constraint"] = "false"  # it goes up: the rows stay as laid out
        if d.key in ports:
            attrs["headport"] = ports[d.key]  # arrows from one side enter apart
        if d.key in mutual and lines:
            attrs["decorate"] = "true"  # a line from the label to its own curve of the pair
        if d.closed and not show_cutoff:
            attrs["style"] = "invis"  # laid out, not drawn: the other edges keep their places
        dot.edge(d.sender, d.receiver, **attrs)
    dot.node(LEGEND, _legend(spec, report, edges), shape="plaintext", **{"class": "legend"})
    return dot
