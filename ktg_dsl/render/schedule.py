"""``ktg render --schedule``: every edge's gate weight over the epochs, as an SVG chart or a
CSV table. The chart draws one line per distinct schedule, naming every edge that follows it,
each line in its own colour and dash; the epoch axis runs from 0 to the last epoch."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..graph import GraphEdge
from ..spec.schema import Spec
from .looks import FONT, gate_text, kind
from .weights import SAMPLED_EPOCHS, weights_over_epochs


def schedule_csv(spec: Spec, edges: list[GraphEdge]) -> str:
    rows = [",".join(["epoch", *(d.key for d in edges)])]
    epochs, table = weights_over_epochs(spec, edges)
    for e, row in zip(epochs, table, strict=True):
        rows.append(",".join([str(e), *(repr(w) for w in row)]))
    return "\n".join(rows) + "\n"


# Dark enough to read as thin lines on white (contrast 3:1 or more: Okabe-Ito without its
# light blue, orange and yellow, and two darker ones), and each line with its own dash too, so
# lines that cross or meet stay apart even in grey print. Colours and dashes cycle at
# different lengths: 42 lines before a pair repeats.
COLORS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#000000", "#a6761d", "#7570b3")
DASHES = ("", "9 4", "2 3", "12 3 3 3", "5 5", "1 4")


def stroke(i: int) -> tuple[str, str]:
    """The colour and dash of the ``i``-th line."""
    return COLORS[i % len(COLORS)], DASHES[i % len(DASHES)]


WRAP = 84  # characters per legend line


@dataclass(frozen=True)
class Line:
    """One drawn line: a schedule and every edge that follows it."""

    weights: tuple[float, ...]
    edges: tuple[GraphEdge, ...]

    def legend(self) -> str:
        """'positive_linear: labels → r32a, r32b → r32a' (several gates: joined by '; ')."""
        by_gate: dict[str, list[str]] = {}
        for d in self.edges:
            by_gate.setdefault(gate_text(d), []).append(d.key.replace("->", " → "))
        note = " (per sample: 1 where the sender is right, else 0)"
        text = "; ".join(f"{gate}: {', '.join(keys)}" for gate, keys in by_gate.items())
        return text + (note if kind(self.edges[0]) == "correct" else "")


def group_lines(edges: list[GraphEdge], table: list[list[float]]) -> list[Line]:
    """Edges with the same weights at every sampled epoch share a line (a per-sample gate
    never shares one with a plain gate), in the order of their first edge."""
    groups: dict[tuple[tuple[float, ...], bool], list[GraphEdge]] = {}
    for i, d in enumerate(edges):
        weights = tuple(row[i] for row in table)
        groups.setdefault((weights, kind(d) == "correct"), []).append(d)
    return [Line(weights, tuple(group)) for (weights, _), group in groups.items()]


def _ticks(top: float, n: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least ``top``, about ``n`` steps."""
    raw = max(top / n, 1.0) if integer else top / n
    steps = (1, 2, 5) if integer else (1, 2, 2.5, 5)
    step = next(s * 10**k for k in range(-3, 9) for s in steps if s * 10**k >= raw)
    count = int(-(-top // step))
    return [round(i * step, 6) for i in range(count + 1)]


def epoch_ticks(last: int) -> list[float]:
    """Round epochs up to the last one, which always gets a tick of its own (e.g. 0, 50,
    100, 150, 199); a round tick too close to it is dropped."""
    if last == 0:
        return [0]
    ticks = [t for t in _ticks(last, 5, integer=True) if t < last]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else last
    if last - ticks[-1] < 0.4 * step and len(ticks) > 1:
        ticks.pop()
    return [*ticks, last]


def _wrap(text: str, width: int = WRAP) -> list[str]:
    """Break a legend entry after its commas (never inside an edge's name) into lines of
    about ``width`` characters."""
    lines, current = [], ""
    for item in re.split(r"(?<=[,;]) ", text):
        if current and len(current) + 1 + len(item) > width:
            lines.append(current)
            current = item
        else:
            current = f"{current} {item}" if current else item
    return [*lines, current]


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


def _steps(sampled: list[int], weights: tuple[float, ...], last: int) -> list[tuple[float, float]]:
    """A staircase: a gate holds its weight for the whole epoch (until the next sample), and
    the line ends at the last epoch; a one-epoch run is a flat line across the chart."""
    if len(sampled) == 1:
        return [(0, weights[0]), (max(last, 1), weights[0])]
    points: list[tuple[float, float]] = []
    for i, (e, w) in enumerate(zip(sampled, weights, strict=True)):
        points.append((e, w))
        if i + 1 < len(sampled):
            points.append((sampled[i + 1], w))
    return points


def _legend_rows(lines: list[Line], left: int, base: int) -> list[str]:
    out, yy = [], base
    for i, line in enumerate(lines):
        color, dash = stroke(i)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{left}" y1="{yy - 4}" x2="{left + 30}" y2="{yy - 4}" stroke="{color}" '
            f'stroke-width="2.5"{dashes}/>'
        )
        for n, text in enumerate(_wrap(line.legend())):
            x = left + 38 + (16 if n else 0)  # continued lines indented
            out.append(f'<text x="{x}" y="{yy}">{html.escape(text)}</text>')
            yy += 16
        yy += 4
    return out


def schedule_svg(spec: Spec, edges: list[GraphEdge]) -> str:
    """A line chart of the edges' weights over the epochs, as plain SVG text."""
    sampled, table = weights_over_epochs(spec, edges, SAMPLED_EPOCHS)
    lines = group_lines(edges, table)
    last = spec.train.epochs - 1
    yticks = _ticks(max([1.0, *(w for row in table for w in row)]), 4)
    left, right, top_m, plot_h, plot_w = 56, 20, 40, 260, 560
    legend_h = sum(16 * len(_wrap(line.legend())) + 4 for line in lines) + 10
    width, height = left + plot_w + right, top_m + plot_h + 50 + legend_h

    def x(e: float) -> float:
        return left + plot_w * e / max(last, 1)

    def y(w: float) -> float:
        # a little headroom, so that lines at the top weight do not merge with the frame
        return top_m + plot_h * (1 - w / (yticks[-1] * 1.06))

    name = html.escape(spec.name)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="12">',
        f"<title>{name}: gate weights per epoch</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">{name}: gate weight per '
        f"epoch (0..{last})</text>",
    ]
    out += _axes(epoch_ticks(last), yticks, x, y, (left, top_m, plot_w, plot_h))
    for i, line in enumerate(lines):
        color, dash = stroke(i)
        points = " ".join(f"{x(e):.1f},{y(w):.1f}" for e, w in _steps(sampled, line.weights, last))
        keys = " ".join(d.key for d in line.edges)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<polyline class="edge" data-edges="{html.escape(keys)}" points="{points}" '
            f'fill="none" stroke="{color}" stroke-width="2.5"{dashes} stroke-linejoin="round">'
            f"<title>{html.escape(line.legend())}</title></polyline>"
        )
    out += _legend_rows(lines, left, top_m + plot_h + 56)
    out.append("</svg>")
    return "\n".join(out) + "\n"
