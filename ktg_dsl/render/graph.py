"""``ktg render``: the graph as a picture read at a glance.

Nodes are the models (frozen teachers and the search objective marked; a model's taps are
ports of its node, see ``nodes``) and a ``labels`` source; an edge's look says its gate kind
(see ``looks``), and a feature edge is a double line from tap to tap (see ``ports``). The
layout is the same whatever is asked of the picture: cut-off edges are always laid out
(invisible unless ``show_cutoff``), the weight at ``epoch`` is a label at the arrow's head,
which Graphviz places after the layout, and the legend does not depend on either; so nodes
never move between ``--epoch`` values or with ``--show-cutoff``. The same spec always gives
the same bytes: everything is iterated in spec order and no time or path goes into the
output. No torch here.
"""

from __future__ import annotations

import html

import graphviz

from ..graph import GraphEdge, GraphReport
from ..spec.schema import LABELS, Spec
from .looks import (
    FONT,
    LOOKS,
    feature_marks,
    fmt_weight,
    gate_text,
    label_lines,
    legend_html,
    look_of,
    shared_losses,
)
from .nodes import add_nodes, objective, taps
from .ports import end_ports
from .weights import SAMPLED_EPOCHS, epoch_weight, weights_over_epochs

LEGEND = "ktg.legend"  # a dot is not allowed in node names, so this id never clashes


def drawn_edges(spec: Spec, report: GraphReport, show_cutoff: bool = False) -> list[GraphEdge]:
    """The edges to draw, in gate-matrix order: by receiver, the labels edge first."""
    order = {name: i for i, name in enumerate(spec.node_names)}
    out = [e for e in report.edges if show_cutoff or not e.closed]
    return sorted(out, key=lambda e: (order[e.receiver], order.get(e.sender, -1)))


def edge_id(key: str) -> str:
    """An edge's id in the SVG, by its key (``sender->receiver``, taps included): a page
    restyles the edge by it (Graphviz's own ``edge1``... follow the drawing order)."""
    return f"edge:{key}"


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
    """How an edge is drawn: its gate kind's colours and line (a feature edge: a double line
    in the kind's darkest colour), its pen by the weight at ``--epoch``, its label."""
    look = LOOKS[look_of(d)]
    width, opacity = _pen(d, top, weight)
    n = len(look.colors)
    colors = [_alpha(c, opacity) if opacity < 1 else c for c in look.colors]
    if d.on_features:
        # three parallel lines 2 pt apart, the middle one unseen: a double line whose two
        # lines are each about half the pen, so that the gap shows at every weight
        color, width = f"{colors[-1]}:invis:{colors[-1]}", 0.3 + width / 2
    else:
        color = colors[0] if n == 1 else ":".join(f"{c};{1 / n:.3f}" for c in colors)
    attrs = {
        "color": color,
        "fontcolor": colors[-1],
        "style": look.style,
        "penwidth": f"{width:.2f}",
        "arrowsize": "0.8",
        "class": f"gate-{look_of(d)}" + (" feature" if d.on_features else ""),
        "tooltip": f"{d.key}: {gate_text(d)}, {d.loss_ref}",
        "id": edge_id(d.key),
    }
    if lines:
        attrs["label"] = "\n".join(lines)
        attrs["fontsize"] = "11"
    if weight is not None:  # at the receiving end: placed after the layout, so nodes stay
        attrs |= {"headlabel": f"w={fmt_weight(weight)}", "labelfontsize": "10"}
        attrs |= {"labelfontcolor": look.colors[-1], "labeldistance": "2.2"}
    return attrs


def _legend(spec: Spec, report: GraphReport, edges: list[GraphEdge]) -> str:
    """The legend of every edge laid out (cut-off ones too, drawn or not): the same whatever
    --epoch and --show-cutoff ask, so that it never moves the nodes."""
    kinds = sorted({look_of(d) for d in edges}, key=list(LOOKS).index)
    features = any(d.on_features for d in edges)
    marks = feature_marks(features, any(taps(spec, name) for name in spec.node_names))
    for labels, loss in shared_losses(edges).items():
        peers = "every node → node logits edge" if features else "every node → node edge"
        marks.append(("loss", f"{'every labels edge' if labels else peers}: {html.escape(loss)}"))
    if report.frozen:
        marks.append(('<font color="#888888">■</font>', "frozen teacher: never trains"))
    if objective(spec):
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


def _paired(edges: list[GraphEdge]) -> set[str]:
    """Keys of edges that share their two nodes with another drawn edge: a mutual pair
    (``a -> b`` and ``b -> a``), or a logits edge and feature edges between the same nodes."""
    count: dict[frozenset[str], int] = {}
    for d in edges:
        pair = frozenset((d.sender, d.receiver))
        count[pair] = count.get(pair, 0) + 1
    return {d.key for d in edges if count[frozenset((d.sender, d.receiver))] > 1}


def build_dot(
    spec: Spec,
    report: GraphReport,
    *,
    epoch: int | None = None,
    show_cutoff: bool = False,
    ports: dict[str, str] | None = None,
) -> graphviz.Digraph:
    """The graph as Graphviz source (no Graphviz program needed to build it). ``ports``:
    where crowded arrows enter their ends (see ``ports.head_ports``), by edge key."""
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
    add_nodes(dot, spec, report)
    shared, paired = shared_losses(edges), _paired([d for d in edges if not d.closed])
    depth = _layers(spec, report, edges)
    _add_layers(dot, depth, edges)
    tapped = {name for name in spec.node_names if taps(spec, name)}
    for i, d in enumerate(edges):
        lines = label_lines(d, [row[i] for row in table], top, shared)
        weight = None if epoch is None or d.closed else epoch_weight(d.gate, epoch, spec)
        attrs = _edge_attrs(d, lines, weight, top)
        if depth[d.sender] > depth[d.receiver]:
            attrs["constraint"] = "false"  # it goes up: the rows stay as laid out
        attrs |= end_ports(d, depth, tapped, ports)  # taps, title cells; crowded arrows apart
        if d.key in paired and lines:
            attrs["decorate"] = "true"  # a line from the label to its own curve of the pair
        if d.closed and not show_cutoff:
            attrs["style"] = "invis"  # laid out, not drawn: the other edges keep their places
        dot.edge(d.sender, d.receiver, **attrs)
    dot.node(LEGEND, _legend(spec, report, edges), shape="plaintext", **{"class": "legend"})
    return dot
