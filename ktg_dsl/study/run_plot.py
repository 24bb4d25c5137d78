"""One run's pictures: its curves (``ktg plot``) from its metrics.jsonl rows, and a node's
confusion matrix (``ktg eval``); matplotlib through Agg, as ``pictures``. The curves:

- the first panel: top-1 per epoch and node (train dashed, evaluation solid);
- then a panel per node: each incoming edge's weighted term over the epochs (the row's
  ``edges``; they add up to the node's training loss, drawn black and dashed), and on its own
  axis at the right the node's evaluation cross-entropy (a different quantity: the training
  total includes the distillation terms).

A value too large to draw (beyond ``LIMIT``, NaN or infinite: a diverged loss is a true
record) is left out of its curve and counted in a note under the picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .pictures import RC, epoch_axis, save_figure

LIMIT = 1e30  # larger magnitudes overflow an axis's range arithmetic (1e308 - -1e308)
COLUMNS = 3


class Points:
    """Drawable (epoch from 1, value) pairs, counting what was left out."""

    def __init__(self) -> None:
        self.left_out = 0

    def of(self, rows: Sequence[dict[str, Any]], get: Any) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for r in rows:
            value = get(r)
            if value is None:
                continue
            if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > LIMIT:
                self.left_out += 1
                continue
            xs.append(r["epoch"] + 1)
            ys.append(float(value))
        return xs, ys


def plot_run(
    rows: Sequence[dict[str, Any]], eval_name: str, title: str, out: Sequence[Path]
) -> list[Path]:
    """Draw one run's curves (see the module) into each of ``out`` (format from the suffix)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        from matplotlib.figure import Figure

        nodes = list(dict.fromkeys(r["node"] for r in rows))
        by_node = {
            n: sorted((r for r in rows if r["node"] == n), key=lambda r: r["epoch"]) for n in nodes
        }
        panels = 1 + len(nodes)
        cols = min(COLUMNS, panels)
        lines = -(-panels // cols)
        fig = Figure(figsize=(4.4 * cols, 3.4 * lines), layout="constrained")
        axes = fig.subplots(lines, cols, squeeze=False).flatten()
        points = Points()
        _accuracy(axes[0], by_node, eval_name, points)
        for ax, node in zip(axes[1:], nodes, strict=False):
            _node_terms(ax, node, by_node[node], eval_name, points)
        for ax in axes[panels:]:
            ax.set_visible(False)
        fig.suptitle(title)
        if points.left_out:
            fig.supxlabel(
                f"{points.left_out} value(s) not drawn: NaN, infinite or beyond ±{LIMIT:g} "
                "(metrics.jsonl keeps them)",
                fontsize=7,
            )
        return [save_figure(fig, path) for path in out]


def _accuracy(
    ax: Any, by_node: dict[str, list[dict[str, Any]]], eval_name: str, points: Points
) -> None:
    # a self-supervised run's train_top1 is the contrastive accuracy (docs/self-supervised.md)
    train = "train (contrastive)" if eval_name.startswith("kNN") else "train"
    for i, (node, mine) in enumerate(by_node.items()):
        for key, style, label in (
            ("train_top1", "--", f"{node} {train}"),
            ("val_top1", "-", f"{node} {eval_name}"),
        ):
            xs, ys = points.of(mine, lambda r, k=key: r.get(k))
            if xs:
                ax.plot(xs, ys, style, color=f"C{i % 10}", label=label, marker=_marker(xs))
    ax.set_title("top-1")
    ax.set_ylabel("top-1 (%)")
    epoch_axis(ax)
    _legend(ax)


def _node_terms(
    ax: Any, node: str, mine: list[dict[str, Any]], eval_name: str, points: Points
) -> None:
    """A node's edge terms and training total (left axis), its evaluation loss (right)."""
    edges = list(dict.fromkeys(e for r in mine for e in (r.get("edges") or {})))
    for i, edge in enumerate(edges):
        xs, ys = points.of(mine, lambda r, e=edge: _term(r, e))
        if xs:
            ax.plot(xs, ys, color=f"C{i % 10}", label=f"{edge} (weighted)", marker=_marker(xs))
    xs, ys = points.of(mine, lambda r: r.get("train_loss"))
    if xs:
        ax.plot(xs, ys, "--", color="black", label="train total", marker=_marker(xs))
    frozen = any(r.get("frozen") for r in mine)
    ax.set_title(f"{node} (frozen)" if frozen else f"{node}: loss terms")
    ax.set_ylabel("training loss terms" if not frozen else "")
    epoch_axis(ax)
    xs, ys = points.of(mine, lambda r: r.get("val_loss"))
    if xs:
        right = ax.twinx()
        right.plot(xs, ys, ":", color="grey", label=f"{eval_name} cross-entropy", marker="x")
        right.set_ylabel(f"{eval_name} cross-entropy", color="grey")
        handles, labels = ax.get_legend_handles_labels()
        more, words = right.get_legend_handles_labels()
        ax.legend(handles + more, labels + words, fontsize=7)
    else:
        _legend(ax)


def _term(row: dict[str, Any], edge: str) -> Any:
    return ((row.get("edges") or {}).get(edge) or {}).get("term")


def _marker(xs: Sequence[int]) -> str | None:
    return "." if len(xs) < 30 else None


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def draw_confusion(
    confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str, out: Path
) -> Path:
    """A confusion matrix (rows: true class, columns: predicted), each row as shares of its
    class (the colour) with the counts written in when there are at most 20 classes."""
    import matplotlib

    with matplotlib.rc_context(RC):
        from matplotlib.figure import Figure

        n = len(classes)
        side = min(max(3.5, 0.45 * n + 1.5), 14.0)
        fig = Figure(figsize=(side + 1.0, side), layout="constrained")
        ax = fig.subplots()
        shares = [[c / max(sum(row), 1) for c in row] for row in confusion]
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, label="share of the true class")
        if n <= 20:
            for i, row in enumerate(confusion):
                for j, count in enumerate(row):
                    dark = shares[i][j] > 0.5
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")  # fmt: skip
        if n <= 40:
            ax.set_xticks(range(n), list(classes), rotation=90 if n > 10 else 0)
            ax.set_yticks(range(n), list(classes))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        return save_figure(fig, out)
