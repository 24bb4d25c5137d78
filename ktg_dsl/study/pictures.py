"""Pictures (matplotlib, imported only here and only when drawing; no pyplot, so no global
backend: figures render through Agg). SVGs are reproducible: a fixed ``svg.hashsalt``, text as
paths and no date in the metadata.

- a study's curves: evaluation top-1 per epoch, each node's mean over seeds with a ± std band,
  one panel per spec;
- a study's final accuracies: a bar per spec and trained node (the best epoch's top-1, mean
  over seeds, ± std as error bars, each seed as a dot).

One run's curves (``ktg plot``) are drawn by ``run_plot``.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_bytes_atomic
from .results import StudyResults

RC: Any = {"svg.hashsalt": "ktg", "svg.fonttype": "path", "font.size": 9}
FORMATS = ("svg", "png")
DPI = 150


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` in the format its suffix names (atomically)."""
    fmt = path.suffix.lstrip(".").lower() or "svg"
    metadata: dict[str, Any] = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _save_all(fig: Any, base: Path) -> list[Path]:
    return [save_figure(fig, base.with_name(f"{base.name}.{fmt}")) for fmt in FORMATS]


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


def epoch_axis(ax: Any) -> None:
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
            epoch_axis(ax)
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
        if everything:  # from 0, so that a bar's height is its accuracy (room for labels)
            axes[0].set_ylim(0.0, min(100.0, max(everything) + 3.0) + 1.5)
        axes[0].set_ylabel(f"{res.split} top-1 (%)")
        handles = [Patch(color=colors[e.name], alpha=0.75, label=e.name) for e in res.specs]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        return _save_all(fig, base)
