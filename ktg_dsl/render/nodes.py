"""The nodes of the picture: the ``labels`` source and the models. A model without taps is a
box, as it always was; a model with taps is an HTML-like table whose title cell is its logits
(port ``LOGITS_PORT``) with, beside it, one small cell per tap (its name and module path), the
port its feature edges start and end at. Each cell of that row touches the top and the bottom
of the node, so an edge can reach any of them from above or below without crossing another."""

from __future__ import annotations

import html

import graphviz

from ..graph import GraphReport
from ..registry import MODELS
from ..spec.components import resolved_args
from ..spec.schema import LABELS, Spec

# the port of a tapped node's title cell, its logits; never a tap's name (taps are identifiers)
LOGITS_PORT = "ktg-logits"
FILL, FROZEN_FILL = "#e3f0fb", "#dcdcdc"
BORDER, FROZEN_BORDER, OBJECTIVE_BORDER = "#3c78b4", "#666666", "#9a6b00"


def objective(spec: Spec) -> str | None:
    """The node ``ktg search`` scores, when the spec has a search."""
    if spec.search is None:
        return None
    return spec.search.objective.node or spec.node_names[0]


def params(spec: Spec, report: GraphReport, name: str) -> str | None:
    """'0.47 M params' when the model can count itself without being built, else None."""
    ref = spec.nodes[name].model
    shape = report.data_info.input_shape if report.data_info else None
    in_channels = shape[0] if shape else None
    classes = report.class_counts.get(name)
    try:
        count = MODELS.get(ref.type).meta.param_count
        if count is None or in_channels is None or classes is None:
            return None
        n = int(count(num_classes=classes, in_channels=in_channels, **resolved_args(ref)))
    except (ValueError, TypeError, KeyError):
        return None
    return f"{n / 1e6:.2f} M params" if n >= 100_000 else f"{n / 1e3:.1f} k params"


def taps(spec: Spec, name: str) -> dict[str, str]:
    """A node's taps, {name: module path}, in spec order ({} when it has none)."""
    return dict(spec.nodes[name].taps or {})


def title_rows(spec: Spec, report: GraphReport, name: str) -> list[str]:
    """The lines that name a model: its name, model, size and marks."""
    rows = [f"<b>{html.escape(name)}</b>", html.escape(str(spec.nodes[name].model))]
    size = params(spec, report, name)
    if size:
        rows.append(f'<font point-size="10" color="#555555">{size}</font>')
    if name in report.frozen:
        rows.append('<font point-size="10" color="#444444"><i>frozen teacher</i></font>')
    if name == objective(spec):
        rows.append('<font point-size="10" color="#9a6b00"><b>★ search objective</b></font>')
    return rows


def tap_cell(tap: str, path: str, border: str) -> str:
    """One port: the tap's name over its module path, small, ruled off on its left."""
    return (
        f'<td port="{tap}" border="1" sides="L" color="{border}" cellpadding="5">'
        f'<font point-size="10"><b>{html.escape(tap)}</b><br/>'
        f'<font color="#555555">{html.escape(path)}</font></font></td>'
    )


def table_label(spec: Spec, report: GraphReport, name: str) -> str:
    """A tapped node: [title | tap | tap ...] in one row, framed like the box it replaces
    (rounded; a frozen teacher square with a double border; the objective's border gold and
    thicker)."""
    frozen = name in report.frozen
    border = OBJECTIVE_BORDER if name == objective(spec) else (FROZEN_BORDER if frozen else BORDER)
    title = "<br/>".join(title_rows(spec, report, name))
    cells = [f'<td port="{LOGITS_PORT}" cellpadding="6">{title}</td>']
    cells += [tap_cell(tap, path, border) for tap, path in taps(spec, name).items()]
    width = "2" if name == objective(spec) else "1"
    row = f"<tr>{''.join(cells)}</tr>"
    if not frozen:
        return (
            f'<<table border="{width}" style="rounded" cellborder="0" cellspacing="0" '
            f'bgcolor="{FILL}" color="{border}">{row}</table>>'
        )
    inner = f'<table border="{width}" cellborder="0" cellspacing="0" color="{border}">{row}</table>'
    return (
        f'<<table border="1" cellborder="0" cellspacing="2" cellpadding="0" '
        f'bgcolor="{FROZEN_FILL}" color="{border}"><tr><td>{inner}</td></tr></table>>'
    )


def node_id(name: str) -> str:
    """A node's id in the SVG (stable: a page restyles it by this id; Graphviz's own
    ``node1``... follow the drawing order)."""
    return f"node:{name}"


def add_nodes(dot: graphviz.Digraph, spec: Spec, report: GraphReport) -> None:
    """The labels source (a self-supervised graph's self edges: its two augmented views), then
    every model in spec order."""
    what = "two views, no labels" if spec.self_supervised is not None else "ground truth"
    dot.node(
        LABELS,
        f'<<b>labels</b><br/><font point-size="10">{what}</font>>',
        shape="cylinder",
        style="filled",
        fillcolor="#fff4c2",
        color="#b59a2e",
        **{"class": "labels", "id": node_id(LABELS)},
    )
    for name in spec.node_names:
        frozen = name in report.frozen
        is_objective = name == objective(spec)
        classes = [
            "model",
            *(["frozen"] if frozen else []),
            *(["objective"] if is_objective else []),
        ]
        if taps(spec, name):
            classes.append("tapped")
            dot.node(
                name,
                table_label(spec, report, name),
                shape="plain",
                **{"class": " ".join(classes), "id": node_id(name)},
            )
            continue
        dot.node(
            name,
            "<" + "<br/>".join(title_rows(spec, report, name)) + ">",
            shape="box",
            style="filled" if frozen else "rounded,filled",
            fillcolor=FROZEN_FILL if frozen else FILL,
            color=OBJECTIVE_BORDER if is_objective else (FROZEN_BORDER if frozen else BORDER),
            penwidth="2.5" if is_objective else "1.2",
            peripheries="2" if frozen else "1",
            **{"class": " ".join(classes), "id": node_id(name)},
        )
