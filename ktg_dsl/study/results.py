"""A study's numbers, read from its finished runs' ``metrics.jsonl`` alone: per run and node the
best evaluation top-1 (and the first epoch reaching it) and the last; per spec and node their
spread over seeds; for two or more specs, each against the baseline, paired over seeds.

``val_top1`` in metrics.jsonl is whichever split the spec evaluates (``data.split``: val or
test); the tables name it so.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import KtgRuntimeError
from .manifest import Manifest, StudyDir, StudyEntry, run_key
from .plan import GRAPH_MEAN, compared_nodes
from .stats import Paired, Spread, paired, spread

Metric = Literal["best", "last"]
METRICS: tuple[Metric, ...] = ("best", "last")


@dataclass(frozen=True)
class NodeRun:
    best: float | None  # the best evaluation top-1 (%)
    best_epoch: int | None  # the first epoch (from 1) that reached it
    last: float | None  # the last epoch's evaluation top-1
    curve: list[float | None]  # evaluation top-1 per epoch (None where not evaluated)
    frozen: bool = False


@dataclass(frozen=True)
class RunRecord:
    spec: str
    seed: int
    key: str
    seconds: float | None  # training time (metrics.jsonl's `elapsed`, resumes included)
    nodes: dict[str, NodeRun]

    @property
    def trained(self) -> list[str]:
        return [n for n, r in self.nodes.items() if not r.frozen]

    def value(self, node: str, metric: Metric) -> float | None:
        """A node's best or last top-1; for the graph mean, the mean over trained nodes."""
        if node == GRAPH_MEAN:
            values = [getattr(self.nodes[n], metric) for n in self.trained]
            if not values or any(v is None for v in values):
                return None
            return statistics.fmean(values)
        run = self.nodes.get(node)
        return None if run is None else getattr(run, metric)


def read_run(path: Path, spec: str, seed: int, key: str) -> RunRecord:
    """A finished run's record from its metrics.jsonl."""
    from ..run.logs import read_metrics
    from ..run.rundir import METRICS as METRICS_FILE

    if not path.is_dir():
        raise KtgRuntimeError(f"{path} is gone (deleted or moved?)")
    rows = read_metrics(path / METRICS_FILE)  # DamagedLog names what and where
    if not rows:
        raise KtgRuntimeError(f"{path / METRICS_FILE} holds no epoch")
    by_node: dict[str, list[dict]] = {}
    for row in rows:
        by_node.setdefault(row["node"], []).append(row)
    nodes = {name: _node_run(sorted(r, key=lambda x: x["epoch"])) for name, r in by_node.items()}
    seconds = rows[-1].get("elapsed") if rows else None
    return RunRecord(spec, seed, key, seconds, nodes)


def _node_run(rows: list[dict]) -> NodeRun:
    curve = [r.get("val_top1") for r in rows]
    evaluated = [(v, r["epoch"]) for v, r in zip(curve, rows, strict=True) if v is not None]
    best = max((v for v, _ in evaluated), default=None)
    best_epoch = next((e + 1 for v, e in evaluated if v == best), None)
    last = rows[-1].get("val_top1") if rows else None
    return NodeRun(best, best_epoch, last, curve, bool(rows and rows[-1].get("frozen")))


@dataclass(frozen=True)
class NodeSummary:
    """One spec's node (or its graph mean) over the seeds it finished."""

    spec: str
    node: str
    frozen: bool
    seeds: list[int]
    best: Spread | None
    last: Spread | None
    best_epoch: float | None  # the mean over seeds
    seconds: float | None  # mean training time of the spec's runs


@dataclass(frozen=True)
class Comparison:
    spec: str
    baseline: str
    node: str
    metric: Metric
    seeds: list[int]  # those both specs finished
    stats: Paired


@dataclass
class StudyResults:
    name: str
    split: str
    seeds: list[int]
    specs: list[StudyEntry]
    baseline: str | None  # None: one spec, no comparison
    runs: list[RunRecord]
    summaries: list[NodeSummary] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # runs not finished (failed, interrupted)
    unreadable: list[str] = field(default_factory=list)  # finished, but their files are damaged

    def of(self, spec: str) -> list[RunRecord]:
        return [r for r in self.runs if r.spec == spec]


def collect(
    study: StudyDir, manifest: Manifest, baseline: str | None = None, node: str | None = None
) -> StudyResults:
    """Everything the tables and pictures show, from the finished runs of ``manifest``."""
    runs, missing, unreadable = [], [], []
    for entry in manifest.specs:
        for seed in manifest.seeds:
            key = run_key(entry.folder, seed)
            if key not in manifest.finished:
                missing.append(key)
                continue
            try:
                runs.append(read_run(study.run_path(key), entry.name, seed, key))
            except KtgRuntimeError as exc:  # one damaged run does not hide the others
                print(f"ktg: warning: run {key} is left out: {exc}", file=sys.stderr)
                missing.append(key)
                unreadable.append(key)
    names = [e.name for e in manifest.specs]
    base = (baseline or names[0]) if len(names) > 1 else None
    res = StudyResults(
        manifest.name, manifest.specs[0].split, manifest.seeds, manifest.specs, base, runs
    )
    res.missing, res.unreadable = missing, unreadable
    for entry in manifest.specs:
        res.summaries += summarise(entry, res.of(entry.name))
    if base is not None:
        b = manifest.entry(base)
        for entry in manifest.specs:
            if entry.name != base:
                res.comparisons += compare(entry, b, res, node)
    return res


def summarise(entry: StudyEntry, runs: Sequence[RunRecord]) -> list[NodeSummary]:
    """A row per node (and the graph mean, for two or more trained nodes)."""
    rows = []
    names = entry.nodes + ([GRAPH_MEAN] if len(entry.trained) > 1 else [])
    for node in names:
        have = [r for r in runs if r.value(node, "best") is not None]
        epochs = [r.nodes[node].best_epoch for r in have if node in r.nodes]
        seconds = [r.seconds for r in runs if r.seconds is not None]
        rows.append(
            NodeSummary(
                spec=entry.name,
                node=node,
                frozen=node in entry.frozen,
                seeds=[r.seed for r in have],
                best=spread([_v(r, node, "best") for r in have]),
                last=spread(
                    [_v(r, node, "last") for r in have if r.value(node, "last") is not None]
                ),
                best_epoch=_mean([e for e in epochs if e is not None]),
                seconds=statistics.fmean(seconds) if seconds else None,
            )
        )
    return rows


def _mean(values: list[int]) -> float | None:
    return statistics.fmean(values) if values else None


def _v(run: RunRecord, node: str, metric: Metric) -> float:
    value = run.value(node, metric)
    assert value is not None
    return value


def compare(
    entry: StudyEntry, baseline: StudyEntry, res: StudyResults, node: str | None
) -> list[Comparison]:
    """``entry`` against the baseline on each compared node, best and last, paired by seed."""
    out = []
    mine = {r.seed: r for r in res.of(entry.name)}
    theirs = {r.seed: r for r in res.of(baseline.name)}
    for name in compared_nodes(baseline, entry, node):
        for metric in METRICS:
            seeds = [
                s
                for s in res.seeds
                if s in mine
                and s in theirs
                and mine[s].value(name, metric) is not None
                and theirs[s].value(name, metric) is not None
            ]
            if not seeds:
                continue
            a = [_v(mine[s], name, metric) for s in seeds]
            b = [_v(theirs[s], name, metric) for s in seeds]
            res_stats = paired(a, b)
            out.append(Comparison(entry.name, baseline.name, name, metric, seeds, res_stats))
    return out


class NotARun(KtgRuntimeError):
    """The folder is not a run directory (or none of its epochs finished)."""


def run_rows(path: Path) -> tuple[list[dict], str, str]:
    """A run directory's metrics.jsonl rows, the split it evaluates and its spec's name."""
    import yaml

    from ..run.logs import DamagedLog, read_metrics
    from ..run.rundir import METRICS as METRICS_FILE
    from ..run.rundir import RESOLVED

    if not path.is_dir():
        what = "a file" if path.exists() else "no such folder"
        raise NotARun(f"{path} is not a run directory ({what})")
    if not (path / METRICS_FILE).exists():
        raise NotARun(
            f"{path} is not a run directory (it holds no {METRICS_FILE}; `ktg train` writes "
            "one in each run directory, e.g. runs/<name>/latest)"
        )
    try:
        rows = read_metrics(path / METRICS_FILE)
    except DamagedLog as exc:
        raise NotARun(str(exc)) from None
    try:
        spec = yaml.safe_load((path / RESOLVED).read_text()) if (path / RESOLVED).is_file() else {}
    except (OSError, ValueError, yaml.YAMLError):
        spec = {}  # the title and the split's name only: the curves are the log's
    if not rows:
        raise NotARun(f"{path} has no finished epoch yet: nothing to plot")
    spec = spec if isinstance(spec, dict) else {}
    split = str((spec.get("data") or {}).get("split", "val"))
    if spec.get("self_supervised") is not None:
        split = f"kNN {split}"  # val_top1 of a self-supervised graph is kNN accuracy
    return rows, split, str(spec.get("name", path.name))
