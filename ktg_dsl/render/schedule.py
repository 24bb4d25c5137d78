"""``ktg render --schedule``: every edge's gate weight over the epochs, as an SVG chart or a
CSV table."""

from __future__ import annotations

import html
from collections.abc import Callable

from ..graph import GraphEdge
from ..spec.schema import Spec
from .graph import FONT, kind
from .weights import SAMPLED_EPOCHS, weights_over_epochs


def schedule_csv(spec: Spec, edges: list[GraphEdge]) -> str:
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


def _axes(
    xticks: list[float],
    yticks: list[float],
    x: Callable[[float], float],
    y: Callable[[float], float],
    frame: tuple[int, int, int, int],
) -> list[str]:
    """Grid lines, ticks and axis titles of the chart."""
    left, top_m, plot_w, plot_h = frame
    out: list[str] = []
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
    return out


def schedule_svg(spec: Spec, edges: list[GraphEdge]) -> str:
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
    out += _axes(xticks, yticks, x, y, (left, top_m, plot_w, plot_h))
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
        gate = d.gate.describe() if d.gate is not None else str(d.gate_ref)
        note = " (per sample: 1 where the sender is right, else 0)" if kind(d) == "correct" else ""
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
