"""Small line and point charts as inline SVG, drawn here rather than with matplotlib so that a
page can move its epoch marker (an element with the x of every epoch in ``data-xs``) and so
that a page written after every epoch of a run costs no plotting library's start-up."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
W, H = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 22, 30


@dataclass
class Series:
    label: str
    values: Sequence[float | None]
    dashed: bool = False
    points: bool = False  # dots only (e.g. one value per trial)


def _ticks(low: float, high: float, n: int = 4) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _whole_ticks(low: int, high: int) -> list[float]:
    step = max(1, math.ceil((high - low) / 5))
    step = next((m for m in (1, 2, 5, 10, 20, 25, 50, 100) if m >= step), step)
    return [float(t) for t in range(math.ceil(low / step) * step, high + 1, step)]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def chart(
    title: str,
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    marker: bool = False,
    xlabel: str = "epoch",
    cls: str = "chart",
    width: int = W,
) -> str:
    """A chart of ``series`` over ``xs`` (one value per x, None for a gap); ``marker``: a
    vertical line the page moves to the chosen x; ``width``: in the chart's units (its text
    keeps its size where a wider chart is shown wider)."""
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high == low:
        low, high = low - 1, high + 1
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    span = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return LEFT + (x - x0) / span * (width - LEFT - RIGHT)

    def py(y: float) -> float:
        return H - BOTTOM - (y - low) / (high - low) * (H - TOP - BOTTOM)

    out = [
        f'<svg class="{cls}" viewBox="0 0 {width} {H}" width="{width}" height="{H}" role="img">',
        f'<text x="{width / 2}" y="14" text-anchor="middle" class="title">'
        f"{html.escape(title)}</text>",
    ]
    out += _axes(low, high, x0, x1, px, py, xlabel, width)
    for i, s in enumerate(series):
        out.append(_line(s, xs, px, py, PALETTE[i % len(PALETTE)]))
    if marker and xs:
        where = " ".join(f"{px(x):.1f}" for x in xs)
        out.append(
            f'<line class="epoch-mark" x1="{px(xs[-1]):.1f}" x2="{px(xs[-1]):.1f}" y1="{TOP}" '
            f'y2="{H - BOTTOM}" data-xs="{where}"/>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _axes(low, high, x0, x1, px, py, xlabel: str, width: int) -> list[str]:
    out = [f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{width - LEFT - RIGHT}" '
           f'height="{H - TOP - BOTTOM}"/>']  # fmt: skip
    for t in _ticks(low, high):
        out.append(f'<text class="tick" x="{LEFT - 4}" y="{py(t) + 3:.1f}" '
                   f'text-anchor="end">{_fmt(t)}</text>')  # fmt: skip
    whole = all(float(x).is_integer() for x in (x0, x1))  # epochs, trials: no 1.5
    for t in _ticks(x0, x1, 5) if not whole else _whole_ticks(int(x0), int(x1)):
        out.append(f'<text class="tick" x="{px(t):.1f}" y="{H - BOTTOM + 12}" '
                   f'text-anchor="middle">{_fmt(t)}</text>')  # fmt: skip
    out.append(f'<text class="tick" x="{(LEFT + width - RIGHT) / 2}" y="{H - 4}" '
               f'text-anchor="middle">{html.escape(xlabel)}</text>')  # fmt: skip
    return out


def _line(s: Series, xs: Sequence[float], px, py, color: str) -> str:
    label = html.escape(s.label)
    # a NaN or infinite value (a damaged or hand-edited log) is a gap, as the axis range
    # leaves it out: no "nan" coordinate in the path
    points = [
        (px(x), py(v))
        for x, v in zip(xs, s.values, strict=False)
        if v is not None and math.isfinite(v)
    ]
    if s.points:
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in points)
        return f'<g class="series" fill="{color}"><title>{label}</title>{dots}</g>'
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
    dash = ' stroke-dasharray="4 3"' if s.dashed else ""
    return (
        f'<path class="series" d="{path}" stroke="{color}" fill="none" stroke-width="1.6"{dash}>'
        f"<title>{label}</title></path>"
    )


def legend(labels: Sequence[tuple[str, bool]]) -> str:
    """The charts' key as HTML: a swatch in each series' colour (dashed ones marked)."""
    items = []
    for i, (label, dashed) in enumerate(labels):
        style = "dashed" if dashed else "solid"
        color = PALETTE[i % len(PALETTE)]
        items.append(
            f'<span class="key"><i style="border-top:2px {style} {color}"></i>'
            f"{html.escape(label)}</span>"
        )
    return '<div class="legend">' + "".join(items) + "</div>"
