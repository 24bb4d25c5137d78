"""A study's results as text: Markdown (printed, and results.md), CSV (results.csv, a row per
spec and node; comparisons.csv, a row per comparison) and JSON (results.json: everything,
the per-run values included)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

from .results import Comparison, NodeSummary, StudyResults
from .stats import WILCOXON_MIN_N, Spread

SUMMARY_FIELDS = [
    "spec", "digest", "node", "frozen", "split", "n", "seeds",
    "best_mean", "best_std", "best_min", "best_max", "best_epoch_mean",
    "last_mean", "last_std", "last_min", "last_max", "seconds_mean",
]  # fmt: skip
SUMMARY_HEAD = "spec|node|n|best {split}|min / max|best epoch|last {split}|min / max|time (s)"
COMPARISON_HEAD = "spec|node|metric|n|difference|95% CI|t|p (t-test)|p (Wilcoxon)"
COMPARISON_FIELDS = [
    "spec", "baseline", "node", "metric", "n", "seeds", "mean_diff", "std_diff",
    "ci_low", "ci_high", "t", "p_t", "p_wilcoxon", "note",
]  # fmt: skip


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _mean_std(s: Spread | None) -> str:
    if s is None:
        return "-"
    return f"{s.mean:.2f} ± {s.std:.2f}" if s.std is not None else f"{s.mean:.2f}"


def _range(s: Spread | None) -> str:
    return "-" if s is None else f"{s.min:.2f} / {s.max:.2f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(res: StudyResults) -> str:
    """The tables as Markdown (also what ``ktg study`` prints)."""
    seeds = ", ".join(map(str, res.seeds))
    lines = [
        f"# Study {res.name}",
        "",
        f"{res.split} top-1 (%) over seeds {seeds}: the mean ± standard deviation (n-1) over "
        "the seeds each spec finished (n), their minimum / maximum, the epoch of the best "
        "(mean) and the mean training time of a run. *best*: each run's best epoch (the first "
        "that reached it); *last*: its last epoch.",
        "",
        _row(SUMMARY_HEAD.format(split=res.split).split("|")),
        _row(["---", "---"] + ["---:"] * 7),
    ]
    lines += [_summary_row(s) for s in res.summaries]
    if res.comparisons:
        lines += ["", *_comparisons(res)]
    unfinished = [k for k in res.missing if k not in res.unreadable]
    if unfinished:
        lines += ["", f"Not finished, left out: {', '.join(unfinished)}."]
    if res.unreadable:
        lines += [
            "",
            f"Finished but unreadable (see the warnings), left out: {', '.join(res.unreadable)}.",
        ]
    return "\n".join(lines) + "\n"


def _summary_row(s: NodeSummary) -> str:
    node = s.node + (" (frozen)" if s.frozen else "")
    n = str(s.best.n) if s.best else "0"
    best, last = s.best, s.last
    cells = [s.spec, node, n, _mean_std(best), _range(best), _num(s.best_epoch, 1)]
    return _row([*cells, _mean_std(last), _range(last), _num(s.seconds, 1)])


def _comparisons(res: StudyResults) -> list[str]:
    lines = [
        f"## Against {res.baseline} (paired over seeds)",
        "",
        f"Differences in percentage points ({res.split} top-1 of the spec minus the "
        "baseline's, seed by seed, over the n seeds both finished): their mean with its 95% "
        "confidence interval (the effect size), the paired t-test and, from "
        f"{WILCOXON_MIN_N} seeds, the Wilcoxon signed-rank test (two-sided p-values, "
        "uncorrected for the number of comparisons). A node that is in only one of two specs "
        "is compared through the graph mean (the mean over a spec's trained nodes).",
        "",
        _row(COMPARISON_HEAD.split("|")),
        _row(["---", "---", "---"] + ["---:"] * 6),
    ]
    for c in res.comparisons:
        lines.append(_comparison_row(c))
    notes: dict[str, list[str]] = {}
    for c in res.comparisons:
        if c.stats.note and f"{c.spec} / {c.node}" not in notes.get(c.stats.note, []):
            notes.setdefault(c.stats.note, []).append(f"{c.spec} / {c.node}")
    if notes:
        lines += ["", *(f"- {note}: {', '.join(who)}." for note, who in notes.items())]
    return lines


def _comparison_row(c: Comparison) -> str:
    st = c.stats
    ci = (
        "-"
        if st.ci_low is None
        else f"[{_num(st.ci_low, sign=True)}, {_num(st.ci_high, sign=True)}]"
    )
    cells = [c.spec, c.node, c.metric, str(st.n), _num(st.mean_diff, sign=True), ci]
    return _row([*cells, _num(st.t), _p(st.p_t), _p(st.p_wilcoxon)])


def _csv(fields: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in fields})
    return out.getvalue()


def summary_csv(res: StudyResults) -> str:
    """A row per spec and node (full precision; empty where there is no value)."""
    digests = {e.name: e.digest for e in res.specs}
    rows = []
    for s in res.summaries:
        row: dict[str, Any] = {
            "spec": s.spec,
            "digest": digests[s.spec],
            "node": s.node,
            "frozen": s.frozen,
            "split": res.split,
            "n": s.best.n if s.best else 0,
            "seeds": " ".join(map(str, s.seeds)),
            "best_epoch_mean": s.best_epoch,
            "seconds_mean": s.seconds,
        }
        for metric, spread in (("best", s.best), ("last", s.last)):
            for key in ("mean", "std", "min", "max"):
                row[f"{metric}_{key}"] = getattr(spread, key) if spread else None
        rows.append(row)
    return _csv(SUMMARY_FIELDS, rows)


def comparisons_csv(res: StudyResults) -> str:
    rows = []
    for c in res.comparisons:
        row = {"spec": c.spec, "baseline": c.baseline, "node": c.node, "metric": c.metric}
        row |= {"seeds": " ".join(map(str, c.seeds)), **asdict(c.stats)}
        rows.append(row)
    return _csv(COMPARISON_FIELDS, rows)


def to_json(res: StudyResults) -> str:
    """Everything: the specs, the per-node summaries, the comparisons, every run's values."""
    runs = [
        {
            "spec": r.spec,
            "seed": r.seed,
            "run": r.key,
            "seconds": r.seconds,
            "nodes": {
                n: {"best": v.best, "best_epoch": v.best_epoch, "last": v.last, "frozen": v.frozen}
                for n, v in r.nodes.items()
            },
        }
        for r in res.runs
    ]
    data = {
        "format": "ktg-study-results",
        "name": res.name,
        "split": res.split,
        "metric": f"{res.split} top-1 (%)",
        "seeds": res.seeds,
        "baseline": res.baseline,
        "specs": [asdict(e) | {"folder": e.folder} for e in res.specs],
        "summary": [asdict(s) for s in res.summaries],
        "comparisons": [asdict(c) for c in res.comparisons],
        "runs": runs,
        "missing": res.missing,
    }
    return json.dumps(data, indent=2, allow_nan=False) + "\n"
