"""How the picture looks: each gate kind's colours, line style and glyph, an edge's label text
(gate, loss, sparkline) and the legend. Pure functions of the linked graph; no Graphviz call."""

from __future__ import annotations

from dataclasses import dataclass

from ..contracts import spread
from ..graph import GraphEdge

FONT = "Helvetica,Arial,sans-serif"
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
    "cutoff": Look(("#c8c8c8",), "dotted", "", "cut off: never computed (--show-cutoff)"),
}


def kind(e: GraphEdge) -> str:
    """How an edge is drawn: its gate's style (parametric when the gate did not build)."""
    return e.gate.style if e.gate is not None else "parametric"


def look_of(e: GraphEdge) -> str:
    """The LOOKS key of an edge: cut-off edges have their own."""
    return "cutoff" if e.closed else kind(e)


def gate_text(e: GraphEdge) -> str:
    return (e.gate.describe() if e.gate is not None else "") or str(e.gate_ref)


def sparkline(values: list[float], top: float) -> str:
    """~8 evenly spaced samples as block characters; empty for a constant series."""
    if not values or max(values) == min(values):
        return ""
    n = len(values)
    picks = spread(n, SPARK_POINTS)
    levels = len(SPARKS) - 1
    return "".join(SPARKS[round(min(values[i] / top, 1.0) * levels)] for i in picks)


def fmt_weight(w: float) -> str:
    return f"{w:.2f}".rstrip("0").rstrip(".") if w else "0"


def loss_text(e: GraphEdge) -> str:
    """The loss as a label says it, e.g. ``kl T=4`` (the reference when it did not build)."""
    return (e.loss.describe() if e.loss is not None else "") or str(e.loss_ref)


def usual_loss(e: GraphEdge) -> str:
    return "ce" if e.is_labels else "kl T=1"


def shared_losses(edges: list[GraphEdge]) -> dict[bool, str]:
    """The unusual loss shared by every drawn logits edge of a group (``True``: the labels
    edges, ``False``: node -> node edges) when the group has two edges or more: said once, in
    the legend, instead of on every edge. Feature edges always say their own."""
    shared: dict[bool, str] = {}
    logits = [e for e in edges if not e.on_features and not e.closed]
    for labels in (True, False):
        texts = {loss_text(e) for e in logits if e.is_labels == labels}
        count = sum(e.is_labels == labels for e in logits)
        if count >= 2 and len(texts) == 1:
            (text,) = texts
            if text != ("ce" if labels else "kl T=1"):  # the usual loss is never written
                shared[labels] = text
    return shared


def label_lines(
    e: GraphEdge, series: list[float], top: float, shared: dict[bool, str]
) -> list[str]:
    """What an edge's label says that its look cannot: the gate (unless through), per sample,
    the loss (unless the usual one or said once in the legend), the weight's sparkline. A
    feature edge says its loss first: it is what the edge carries between the two layers."""
    look = LOOKS[look_of(e)]
    lines = []
    loss = loss_text(e)
    if e.on_features:
        lines.append(loss)
    if look_of(e) != "through":
        lines.append(" ".join(p for p in (look.glyph, gate_text(e)) if p))
    if e.gate is not None and e.gate.per_sample:
        lines.append("(per sample)")
    if not e.on_features and loss != usual_loss(e) and shared.get(e.is_labels) != loss:
        lines.append(loss)
    if not e.closed and (spark := sparkline(series, top)):
        lines.append(spark)
    return lines


FEATURE_LINE = "══"  # a feature edge is a double line
PORT_SAMPLE = (
    '<table border="0" cellborder="1" cellspacing="0" cellpadding="1" color="#3c78b4">'
    '<tr><td><font point-size="7"><b>f3</b></font></td></tr></table>'
)


def feature_marks(features: bool, tapped: bool) -> list[tuple[str, str]]:
    """The legend's rows for feature edges (when the graph has some) and ports (when a node
    has taps)."""
    marks = []
    if features:
        sample = f'<font color="#333333">{FEATURE_LINE}</font>'
        marks.append((sample, "feature edge: tap → tap, labelled with its loss"))
    if tapped:
        marks.append((PORT_SAMPLE, "a port is a tap: an intermediate layer (module path)"))
    return marks


def legend_html(kinds: list[str], marks: list[tuple[str, str]]) -> str:
    """The legend: a small HTML-like table of the kinds and marks given."""
    rows = ['<tr><td colspan="2" align="left"><b>legend</b></td></tr>']
    for name in kinds:
        look = LOOKS[name]
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
