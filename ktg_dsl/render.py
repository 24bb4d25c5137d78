"""``ktg render``: the graph as a picture read at a glance, and its gates as a schedule.

Nodes are the models (frozen teachers and the search objective marked) and a ``labels`` source;
an edge's look says its gate kind without a legend: solid = through, a blue ramp and ``↗`` =
rising, an orange ramp and ``↘`` = falling, green dotted ``✓`` = correct, purple dashed =
parametric, faint grey dotted = cutoff (only with ``--show-cutoff``). ``--epoch E`` draws each
edge with the weight it has at epoch E. The same spec always gives the same bytes: everything is
iterated in spec order and no time or path goes into the output. No torch here.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import graphviz

from .atomic import check_writable, write_bytes_atomic, write_text_atomic
from .components.gates import Gate, spread
from .errors import KtgRuntimeError, UsageError
from .graph import Edge, GraphReport, gate_horizon
from .registry import LOSSES, MODELS
from .spec.components import resolved_args
from .spec.schema import LABELS, Spec

FORMATS = ("svg", "png", "pdf", "dot")
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


@dataclass(frozen=True)
class DrawnEdge:
    edge: Edge
    gate: Gate | None
    closed: bool

    @property
    def key(self) -> str:
        return f"{self.edge.sender}->{self.edge.receiver}"

    @property
    def kind(self) -> str:
        return self.gate.style if self.gate is not None else "parametric"


def drawn_edges(spec: Spec, report: GraphReport, show_cutoff: bool = False) -> list[DrawnEdge]:
    """The edges to draw, in gate-matrix order: by receiver, the labels edge first."""
    order = {name: i for i, name in enumerate(spec.node_names)}
    out = []
    for e in report.edges:
        data = report.graph.edges[e.sender, e.receiver]
        if data["closed"] and not show_cutoff:
            continue
        out.append(DrawnEdge(e, data["gate"], bool(data["closed"])))
    return sorted(out, key=lambda d: (order[d.edge.receiver], order.get(d.edge.sender, -1)))


def epoch_weight(gate: Gate | None, epoch: int, spec: Spec) -> float:
    """The gate's weight at an epoch; per-step gates are read at the epoch's first step, and
    the per-sample ``correct`` gate counts as 1 (its upper bound)."""
    if gate is None or gate.per_sample:
        return 1.0
    horizon = gate_horizon(spec)
    t = epoch * (horizon // spec.train.epochs)
    return gate.weight(t, horizon)


SAMPLED_EPOCHS = 512  # a picture needs no more; a run may have millions of epochs
MAX_CSV_EPOCHS = 100_000


def sampled_epochs(epochs: int, limit: int | None) -> list[int]:
    """Every epoch, or ``limit`` evenly spaced ones (first and last included)."""
    return list(range(epochs)) if limit is None else spread(epochs, limit)


def weights_over_epochs(
    spec: Spec, edges: list[DrawnEdge], limit: int | None = None
) -> tuple[list[int], list[list[float]]]:
    """The epochs sampled, and one row per sampled epoch, one column per edge."""
    epochs = sampled_epochs(spec.train.epochs, limit)
    return epochs, [[epoch_weight(d.gate, e, spec) for d in edges] for e in epochs]


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


def _loss_label(e: Edge) -> str:
    """The loss, unless it is the usual one (ce on labels edges, kl at T=1 between nodes)."""
    try:
        text = str(LOSSES.get(e.loss.type).build(e.loss.args).describe())
    except Exception:
        text = str(e.loss)
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
    d: DrawnEdge, series: list[float], top: float, epoch: int | None, spec: Spec
) -> dict[str, str]:
    look = LOOKS["cutoff" if d.closed else d.kind]
    gate_text = d.gate.describe() if d.gate is not None else str(d.edge.gate)
    lines = []
    if d.kind != "through" or d.closed:
        lines.append(" ".join(p for p in (look.glyph, gate_text) if p))
    if d.gate is not None and d.gate.per_sample:
        lines.append("(per sample)")
    if loss := _loss_label(d.edge):
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
        "class": f"gate-{'cutoff' if d.closed else d.kind}",
        "tooltip": f"{d.key}: {gate_text}, {d.edge.loss}",
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
    for i, d in enumerate(edges):
        series = [row[i] for row in table]
        dot.edge(d.edge.sender, d.edge.receiver, **_edge_attrs(d, series, top, epoch, spec))

    kinds = sorted({"cutoff" if d.closed else d.kind for d in edges}, key=list(LOOKS).index)
    marks = []
    if report.frozen:
        marks.append(('<font color="#888888">■</font>', "frozen teacher: never trains"))
    if _objective(spec):
        marks.append(('<font color="#9a6b00">★</font>', "the search objective"))
    if epoch is not None:
        marks.append(("w=", f"weight at epoch {epoch} (also the width)"))
    dot.node(LEGEND, _legend(kinds, marks), shape="plaintext", **{"class": "legend"})
    return dot


# --------------------------------------------------------------------------- the schedule


def schedule_csv(spec: Spec, edges: list[DrawnEdge]) -> str:
    rows = [",".join(["epoch", *(d.key for d in edges)])]
    epochs, table = weights_over_epochs(spec, edges)
    for e, row in zip(epochs, table, strict=True):
        rows.append(",".join([str(e), *(repr(w) for w in row)]))
    return "\n".join(rows) + "\n"


PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#999999")


def _ticks(top: float, n: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least ``top``, about ``n`` steps."""
    raw = max(top / n, 1.0) if integer else top / n
    steps = (1, 2, 5) if integer else (1, 2, 2.5, 5)
    step = next(s * 10**k for k in range(-3, 9) for s in steps if s * 10**k >= raw)
    count = int(-(-top // step))
    return [round(i * step, 6) for i in range(count + 1)]


def schedule_svg(spec: Spec, edges: list[DrawnEdge]) -> str:
    """A line chart of every edge's weight over the epochs, as plain SVG text."""
    sampled, table = weights_over_epochs(spec, edges, SAMPLED_EPOCHS)
    epochs = spec.train.epochs
    ends = [*sampled[1:], epochs]  # each sample holds until the next one
    yticks = _ticks(max([1.0, *(w for row in table for w in row)]), 4)
    xticks = [t for t in _ticks(epochs, 5, integer=True) if t <= epochs]
    left, right, top_m, plot_h, plot_w = 56, 20, 40, 260, 560
    legend_h = 18 * len(edges) + 10
    width, height = left + plot_w + right, top_m + plot_h + 50 + legend_h

    def x(e: float) -> float:
        return left + plot_w * e / epochs

    def y(w: float) -> float:
        # a little headroom, so that lines at the top weight do not merge with the frame
        return top_m + plot_h * (1 - w / (yticks[-1] * 1.06))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="12">',
        f"<title>{html.escape(spec.name)}: gate weights per epoch</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">'
        f"{html.escape(spec.name)}: gate weight per epoch</text>",
    ]
    for t in yticks:
        out.append(
            f'<line x1="{left}" y1="{y(t):.1f}" x2="{left + plot_w}" y2="{y(t):.1f}" '
            f'stroke="#e5e5e5"/><text x="{left - 6}" y="{y(t) + 4:.1f}" '
            f'text-anchor="end">{t:g}</text>'
        )
    for t in xticks:
        out.append(
            f'<line x1="{x(t):.1f}" y1="{top_m + plot_h}" x2="{x(t):.1f}" '
            f'y2="{top_m + plot_h + 4}" stroke="#333"/><text x="{x(t):.1f}" '
            f'y="{top_m + plot_h + 18}" text-anchor="middle">{t:g}</text>'
        )
    out.append(
        f'<path d="M{left},{top_m}V{top_m + plot_h}H{left + plot_w}" fill="none" stroke="#333"/>'
        f'<text x="{left + plot_w / 2}" y="{top_m + plot_h + 36}" text-anchor="middle">epoch'
        f'</text><text transform="translate(16,{top_m + plot_h / 2}) rotate(-90)" '
        'text-anchor="middle">weight</text>'
    )
    # Edges with the same schedule lie on one another: the earlier ones are drawn wider, so
    # every colour still shows as a band around the later ones.
    columns = [tuple(row[i] for row in table) for i in range(len(edges))]
    for i, d in enumerate(edges):
        later = sum(columns[j] == columns[i] for j in range(i + 1, len(edges)))
        # a gate holds its weight for the whole epoch: draw a staircase, not a ramp
        points = " ".join(
            f"{x(e):.1f},{y(w):.1f} {x(end):.1f},{y(w):.1f}"
            for e, end, w in zip(sampled, ends, columns[i], strict=True)
        )
        out.append(
            f'<polyline class="edge" data-edge="{html.escape(d.key)}" points="{points}" '
            f'fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="{2 + 4 * later}" '
            f'stroke-linejoin="round"><title>{html.escape(d.key)}</title></polyline>'
        )
    base = top_m + plot_h + 56
    for i, d in enumerate(edges):
        gate = d.gate.describe() if d.gate is not None else str(d.edge.gate)
        note = " (per sample: 1 where the sender is right, else 0)" if d.kind == "correct" else ""
        yy = base + 18 * i
        out.append(
            f'<line x1="{left}" y1="{yy - 4}" x2="{left + 24}" y2="{yy - 4}" '
            f'stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="3"/>'
            f'<text x="{left + 32}" y="{yy}">{html.escape(d.key.replace("->", " → "))}: '
            f"{html.escape(gate)}{note}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the command

PDF_DATE = re.compile(rb"/CreationDate \(D:\d{14}Z\)")
NO_DOT = """cannot draw {out}: the Graphviz program 'dot' was not found on PATH.
  Install Graphviz, then run the command again:
    Debian/Ubuntu:  sudo apt-get install graphviz
    macOS:          brew install graphviz
    conda:          conda install -c conda-forge graphviz
  Or write the Graphviz source, which needs no program: ktg render SPEC -o graph.dot"""


def output_format(path: str, given: str | None) -> str:
    if given:
        return given
    ext = Path(path).suffix.lower().lstrip(".")
    fmt = "dot" if ext == "gv" else ext
    if fmt not in FORMATS:
        raise UsageError(
            f"cannot tell the format of '{path}' from its extension; name the file "
            f"*.svg, *.png, *.pdf or *.dot, or give --format {{{','.join(FORMATS)}}}"
        )
    return fmt


def _check_args(args: argparse.Namespace, epochs: int) -> str:
    """The output format; raises UsageError for arguments that cannot work."""
    fmt = output_format(str(args.output), getattr(args, "format", None))
    epoch = getattr(args, "epoch", None)
    if epoch is not None and not 0 <= epoch < epochs:
        raise UsageError(
            f"--epoch {epoch} is outside the run: epochs are counted from 0, so 0..{epochs - 1}"
        )
    schedule = getattr(args, "schedule", None)
    if schedule and Path(schedule).suffix.lower() == ".csv" and epochs > MAX_CSV_EPOCHS:
        raise UsageError(
            f"--schedule {schedule}: a table of {epochs} epochs is too long; draw it as .svg"
        )
    if schedule and Path(schedule).suffix.lower() not in (".svg", ".csv"):
        raise UsageError(f"--schedule {schedule}: name a .svg (a chart) or .csv (a table) file")
    return fmt


def render_bytes(dot: graphviz.Digraph, fmt: str, out: str) -> bytes:
    if fmt == "dot":
        return dot.source.encode("utf-8")
    if fmt == "png":
        dot = dot.copy()
        dot.attr("graph", dpi="144")  # crisp on high-density screens; svg/pdf are vectors
    try:
        data: bytes = dot.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise KtgRuntimeError(NO_DOT.format(out=out)) from None
    except graphviz.CalledProcessError as exc:
        stderr = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise KtgRuntimeError(f"Graphviz could not draw {out}: {stderr or exc}") from None
    if fmt == "pdf":
        # cairo stamps the time into PDFs (older versions ignore SOURCE_DATE_EPOCH); a fixed
        # date of the same length keeps the file reproducible and its byte offsets valid
        data = PDF_DATE.sub(rb"/CreationDate (D:20000101000000Z)", data)
    return data


def render_command(spec: Spec, report: GraphReport, args: argparse.Namespace) -> int:
    """``ktg render``: check the arguments, build everything in memory, then write."""
    epochs = spec.train.epochs
    fmt = _check_args(args, epochs)
    out = str(args.output)
    epoch, schedule = getattr(args, "epoch", None), getattr(args, "schedule", None)
    for target in (out, schedule):  # both writable, or neither is written
        if target:
            check_writable(target)
    show_cutoff = bool(getattr(args, "show_cutoff", False))

    dot = build_dot(spec, report, epoch=epoch, show_cutoff=show_cutoff)
    data = render_bytes(dot, fmt, out)
    edges = drawn_edges(spec, report, show_cutoff)
    chart: tuple[str, str] | None = None
    if schedule:
        draw = schedule_svg if str(schedule).lower().endswith(".svg") else schedule_csv
        chart = (str(schedule), draw(spec, edges))

    # status lines go to stderr when a drawing goes to stdout
    status = sys.stderr if "-" in (out, schedule) else sys.stdout
    write_bytes_atomic(out, data)
    print(
        f"wrote {out} ({_count(len(spec.nodes), 'node')}, {_count(len(edges), 'edge')})",
        file=status,
    )
    if chart is not None:
        write_text_atomic(*chart)
        print(
            f"wrote {chart[0]} ({_count(len(edges), 'edge')} over {_count(epochs, 'epoch')})",
            file=status,
        )
    return 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
