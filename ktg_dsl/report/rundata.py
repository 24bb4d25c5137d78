"""What a run's page shows, read from its directory: the metrics rows by epoch and node, each
drawn edge's gate weight, loss and term per epoch (metrics.jsonl ``edges``; ``gates`` alone
in logs written before edges had their own losses), the resolved spec, run.json, timings.

Everything here is plain data, the same whichever page embeds it; the page's script reads it
as JSON."""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bounded import ReadRefused, read_text_capped
from ..errors import KtgRuntimeError
from ..graph import GraphEdge, GraphReport
from ..run.rundir import RESOLVED, RUN_INFO
from ..spec.schema import Spec

SPEC_LIMIT = 4 * 1024 * 1024  # a resolved spec is a few kB
INFO_LIMIT = 1024 * 1024
NODE_SERIES = ("train_loss", "train_top1", "val_top1", "val_loss", "lr")


class NotAReport(KtgRuntimeError):
    """A path that no page can be made of (said in the user's words)."""


@dataclass
class EdgeSeries:
    key: str  # the graph's key (sender->receiver, taps included): the SVG id's part
    metric_key: str  # its name among the receiver's incoming edges in metrics.jsonl
    sender: str
    receiver: str
    gate: str
    loss: str
    weight: list[float | None] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)  # the edge's loss before its gate
    term: list[float | None] = field(default_factory=list)  # weight x loss


@dataclass
class RunData:
    path: Path
    name: str
    split: str
    spec_text: str
    info: dict[str, Any]
    epochs: list[int]  # the finished epochs (from 0)
    total_epochs: int  # what the spec asks
    nodes: dict[str, dict[str, list[float | None]]]  # node -> series -> value per epoch
    frozen: list[str]
    edges: list[EdgeSeries]
    epoch_time: list[float | None]
    elapsed: float | None

    def as_json(self) -> dict[str, Any]:
        """The page's data: one value per finished epoch in every series."""
        return {
            "name": self.name,
            "split": self.split,
            "epochs": self.epochs,
            "total_epochs": self.total_epochs,
            "nodes": self.nodes,
            "frozen": self.frozen,
            "edges": [e.__dict__ for e in self.edges],
            "epoch_time": self.epoch_time,
        }


def metric_key(d: GraphEdge) -> str:
    """The edge's name among its receiver's incoming edges (run/logs, engine's ``edge_key``):
    ``labels``, the sender, or ``sender.tap->tap`` for a feature edge."""
    if d.on_features:
        return f"{d.sender}.{d.sender_tap}->{d.receiver_tap}"
    return d.sender


def run_spec(path: Path) -> tuple[str, Spec, GraphReport]:
    """The run's resolved spec: its text, and the checked spec and graph (to draw it)."""
    import yaml

    from ..check import check_data

    file = path / RESOLVED
    why = "the page draws the graph from it (ktg train writes it when a run starts)"
    if not os.path.lexists(file):
        raise NotAReport(f"{path} is a run directory without its spec {RESOLVED}: {why}")
    try:
        text = read_text_capped(file, SPEC_LIMIT, "the run's spec")
    except ReadRefused as exc:
        raise NotAReport(f"{exc}; {why}") from None
    except OSError as exc:
        raise NotAReport(f"cannot read the run's spec {file}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NotAReport(f"{file} is not YAML{where} ({problem}); {why}") from None
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a YAML {type(data).__name__}, not a mapping"
        raise NotAReport(f"{file} is not a spec: it is {what}; {why}")
    report = check_data(data)
    if report.spec is None or report.graph is None:
        first = report.errors[0].format() if report.errors else "not a spec"
        raise NotAReport(f"{file} is not a valid spec: {first}")
    return text, report.spec, report.graph


def run_info(path: Path) -> dict[str, Any]:
    """run.json, or nothing (an older run, or one whose file is damaged: the page says so)."""
    try:
        info = json.loads(read_text_capped(path / RUN_INFO, INFO_LIMIT, "run.json"))
    except (OSError, ReadRefused, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def load_run(
    path: Path, checked: tuple[str, Spec, GraphReport] | None = None
) -> tuple[RunData, Spec, GraphReport]:
    """A run directory's page data, its spec and graph (``checked``: the spec's text, spec and
    graph, when the caller has them: a run training now). NotAReport for a folder that is not
    a run with at least one finished epoch."""
    from ..render import drawn_edges
    from ..study.results import NotARun, run_rows

    try:
        rows, split, _ = run_rows(path)
    except NotARun as exc:
        raise NotAReport(str(exc)) from None
    text, spec, graph = checked or run_spec(path)
    rows = _matching(rows, path, spec)
    epochs = sorted({int(r["epoch"]) for r in rows})
    at = {e: i for i, e in enumerate(epochs)}
    table: dict[tuple[int, str], dict[str, Any]] = {(r["epoch"], r["node"]): r for r in rows}
    nodes = {
        name: {k: [table.get((e, name), {}).get(k) for e in epochs] for k in NODE_SERIES}
        for name in spec.node_names
    }
    frozen = [n for n in spec.node_names if any(table.get((e, n), {}).get("frozen") for e in at)]
    edges = [_edge_series(d, epochs, table) for d in drawn_edges(spec, graph)]
    first = [next((r for r in rows if r["epoch"] == e), {}) for e in epochs]
    data = RunData(
        path=path,
        name=spec.name,
        split=split,
        spec_text=text,
        info=run_info(path),
        epochs=epochs,
        total_epochs=spec.train.epochs,
        nodes=nodes,
        frozen=frozen,
        edges=edges,
        epoch_time=[r.get("epoch_time") for r in first],
        elapsed=first[-1].get("elapsed") if first else None,
    )
    return data, spec, graph


def _matching(rows: list[dict[str, Any]], path: Path, spec: Spec) -> list[dict[str, Any]]:
    """The rows, checked against the run's spec: a row of a node the spec does not have means
    the log and the spec are of different runs (refused); a last epoch that has fewer nodes'
    rows than the one before is still being written (a run training now) and is left out."""
    from ..run.rundir import METRICS

    known = set(spec.node_names)
    strangers = sorted({str(r["node"]) for r in rows} - known)
    if strangers:
        raise NotAReport(
            f"{path / METRICS} has rows of node(s) {', '.join(map(repr, strangers[:5]))} that "
            f"its spec {path / RESOLVED} does not have (it has {', '.join(spec.node_names)}): "
            "the log and the spec are of different runs"
        )
    for r in rows:
        _check_gates(r, path / METRICS)
    by_epoch: dict[int, set[str]] = {}
    for r in rows:
        by_epoch.setdefault(int(r["epoch"]), set()).add(str(r["node"]))
    order = sorted(by_epoch)
    if len(order) > 1 and by_epoch[order[-1]] < by_epoch[order[-2]]:
        print(
            f'ktg: warning: {path / METRICS}: its last epoch ("epoch": {order[-1]}) has '
            f"rows of {len(by_epoch[order[-1]])} of {len(by_epoch[order[-2]])} nodes (still "
            "being written?); left out",
            file=sys.stderr,
        )
        rows = [r for r in rows if int(r["epoch"]) != order[-1]]
    return rows


def _check_gates(row: dict[str, Any], log: Path) -> None:
    """A row's ``gates`` (read_metrics checks ``edges``, not these): per edge, its gate's mean
    weight, a finite number not below 0."""
    gates = row.get("gates")
    where = f'{log} is damaged: its row of node {row["node"]!r}, "epoch": {row["epoch"]}, has'
    if gates is None:
        return
    if not isinstance(gates, dict):
        raise NotAReport(f"{where} 'gates' {_shown(gates)}, not an object of gate weights")
    for key, w in gates.items():
        ok = isinstance(w, int | float) and not isinstance(w, bool)
        try:
            ok = ok and math.isfinite(w) and w >= 0
        except OverflowError:  # a whole number past a float's range
            ok = False
        if not ok:
            raise NotAReport(f"{where} 'gates.{key}' {_shown(w)}, not a weight (finite, >= 0)")


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _edge_series(
    d: GraphEdge, epochs: list[int], table: dict[tuple[int, str], dict[str, Any]]
) -> EdgeSeries:
    """One edge's numbers per epoch: from ``edges`` (weight, loss, term); from ``gates`` for
    the weight where a row has no ``edges``; 0 where the edge was closed all epoch (a row
    names only the edges open at some step)."""
    from ..render.looks import gate_text, loss_text

    mk = metric_key(d)
    out = EdgeSeries(d.key, mk, d.sender, d.receiver, gate_text(d), loss_text(d))
    for e in epochs:
        row = table.get((e, d.receiver))
        if row is None or row.get("frozen"):
            for series in (out.weight, out.value, out.term):
                series.append(None)
            continue
        parts = (row.get("edges") or {}).get(mk)
        if parts is not None:
            out.weight.append(parts.get("weight"))
            out.value.append(parts.get("loss"))
            out.term.append(parts.get("term"))
            continue
        gates = row.get("gates") or {}
        out.weight.append(gates.get(mk, 0.0))
        out.value.append(None)
        out.term.append(0.0 if mk not in gates else None)
    return out
