"""Pictures (matplotlib, imported only here and only when drawing; no pyplot, so no global
backend: figures render through Agg). SVGs are reproducible: a fixed ``svg.hashsalt``, text as
paths and no date in the metadata.

- a study's curves: evaluation top-1 per epoch, each node's mean over seeds with a ± std band,
  one panel per spec;
- a study's final accuracies: a bar per spec and trained node (the best epoch's top-1, mean
  over seeds, ± std as error bars, each seed as a dot);
- one run's curves (``ktg plot``): train and evaluation top-1 and loss per epoch and node.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_bytes_atomic
from .results import StudyResults

RC: Any = {"svg.hashsalt": "ktg", "svg.fonttype": "path", "font.size": 9}
FORMATS = ("svg", "png")
DPI = 150


def _save(fig: Any, path: Path) -> Path:
    """Write ``fig`` in the format its suffix names (atomically)."""
    fmt = path.suffix.lstrip(".").lower() or "svg"
    metadata: dict[str, Any] = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _save_all(fig: Any, base: Path) -> list[Path]:
    return [_save(fig, base.with_name(f"{base.name}.{fmt}")) for fmt in FORMATS]


def _band(curves: Sequence[Sequence[float | None]]) -> tuple[list[int], list[float], list[float]]:
    """Epochs (from 1) where some seed evaluated, the mean there and the std (0 for one)."""
    epochs, means, stds = [], [], []
    for i in range(max((len(c) for c in curves), default=0)):
        values = [v for c in curves if i < len(c) and (v := c[i]) is not None]
        if values:
            epochs.append(i + 1)
            means.append(statistics.fmean(values))
            stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    return epochs, means, stds


def _epoch_axis(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def draw_curves(res: StudyResults, base: Path) -> list[Path]:
    """``base``.svg and .png: a panel per spec, each node's mean curve ± std over seeds."""
    import matplotlib

    with matplotlib.rc_context(RC):
        from matplotlib.figure import Figure

        n = len(res.specs)
        fig = Figure(figsize=(4.2 * n, 3.4), layout="constrained")
        axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
        for ax, entry in zip(axes, res.specs, strict=True):
            runs = res.of(entry.name)
            for node in entry.nodes:
                epochs, mean, std = _band([r.nodes[node].curve for r in runs if node in r.nodes])
                if not epochs:
                    continue
                (line,) = ax.plot(epochs, mean, label=node + (" (frozen)" * (node in entry.frozen)))
                low = [m - s for m, s in zip(mean, std, strict=True)]
                high = [m + s for m, s in zip(mean, std, strict=True)]
                ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, lw=0)
            ax.set_title(f"{entry.name} (n = {len(runs)} seeds)")
            _epoch_axis(ax)
            ax.legend(loc="lower right")
        axes[0].set_ylabel(f"{res.split} top-1 (%), mean ± std")
        return _save_all(fig, base)


def draw_final(res: StudyResults, base: Path) -> list[Path]:
    """``base``.svg and .png: two panels, each run's best epoch and its last epoch, with the
    top-1 per spec and trained node as mean ± std over seeds, each seed a dot. Bars are
    coloured by spec (the legend) and labelled by node."""
    import matplotlib

    with matplotlib.rc_context(RC):
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        keys = [(e.name, node) for e in res.specs for node in e.trained]
        panels = {
            metric: [
                [v for r in res.of(spec) if (v := r.value(node, metric)) is not None]
                for spec, node in keys
            ]
            for metric in ("best", "last")
        }
        everything = [v for columns in panels.values() for values in columns for v in values]
        width = max(4.0, 0.55 * len(keys) + 1.0)
        fig = Figure(figsize=(2 * width, 3.8), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        colors = {e.name: f"C{i % 10}" for i, e in enumerate(res.specs)}
        for ax, (metric, columns) in zip(axes, panels.items(), strict=True):
            for x, ((spec, _node), values) in enumerate(zip(keys, columns, strict=True)):
                if not values:
                    continue
                mean = statistics.fmean(values)
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                ax.bar(x, mean, yerr=std, color=colors[spec], alpha=0.75, capsize=3, width=0.75)
                ax.plot([x] * len(values), values, "o", color="black", ms=2.5, zorder=3)
                top = max(mean + std, *values)
                ax.annotate(f"{mean:.1f}", (x, top), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 2), textcoords="offset points")  # fmt: skip
            ax.set_xticks(range(len(keys)), [node for _, node in keys])
            what = "best epoch (chosen on this split)" if metric == "best" else "last epoch"
            ax.set_title(f"{what}: mean ± std over seeds")
            ax.grid(axis="y", alpha=0.3)
        if everything:
            low, high = min(everything), max(everything)
            pad = max(high - low, 1.0)
            axes[0].set_ylim(max(0.0, math.floor(low - pad)), min(100.0, high + pad) + 1.5)
        axes[0].set_ylabel(f"{res.split} top-1 (%) (the axis does not start at 0)")
        handles = [Patch(color=colors[e.name], alpha=0.75, label=e.name) for e in res.specs]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        return _save_all(fig, base)


def plot_run(
    rows: Sequence[dict[str, Any]], eval_name: str, title: str, out: Sequence[Path]
) -> list[Path]:
    """One run's curves from its metrics.jsonl rows: top-1 (train dashed, evaluation solid)
    and loss per epoch and node, written to each of ``out`` (format from the suffix)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9.0, 3.6), layout="constrained")
        acc, loss = fig.subplots(1, 2)
        nodes = list(dict.fromkeys(r["node"] for r in rows))
        for i, node in enumerate(nodes):
            mine = sorted((r for r in rows if r["node"] == node), key=lambda r: r["epoch"])
            color = f"C{i % 10}"
            for ax, key, style, label in (
                (acc, "train_top1", "--", f"{node} train"),
                (acc, "val_top1", "-", f"{node} {eval_name}"),
                (loss, "train_loss", "--", f"{node} train"),
                (loss, "val_loss", "-", f"{node} {eval_name}"),
            ):
                points = [(r["epoch"] + 1, r[key]) for r in mine if r.get(key) is not None]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(
                        xs,
                        ys,
                        style,
                        color=color,
                        label=label,
                        marker="." if len(xs) < 30 else None,
                    )
        acc.set_ylabel("top-1 (%)")
        loss.set_ylabel("loss")
        for ax in (acc, loss):
            _epoch_axis(ax)
            ax.legend(fontsize=7)
        fig.suptitle(title)
        return [_save(fig, path) for path in out]
