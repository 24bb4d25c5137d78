"""The spec as a graph: ``link(spec)`` turns the written edges into typed
:class:`GraphEdge`s (gates and losses built once, open/closed known), holds them in a networkx
DiGraph, finds the frozen teachers and the class counts, and runs every check that needs the
whole graph (``checks.CHECKS``), asking networkx the graph questions. Later stages read the
:class:`GraphReport` only.

Edges point from sender to receiver; the ground truth is a source named ``labels``.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from ..contracts import ContractError, EdgeLoss, Gate
from ..errors import Path, SpecIssue
from ..spec.components import check_ref, lookup
from ..spec.schema import ComponentRef, Spec
from .checks import CHECKS, Linked, ends_exist
from .edges import spec_edges
from .report import (
    STEPS_GUESS,
    Edge,
    GraphEdge,
    GraphReport,
    data_info,
    end_name,
    gate_horizon,
    loss_target,
    loss_views_of,
    split_end,
)

__all__ = [
    "CHECKS",
    "STEPS_GUESS",
    "Edge",
    "GraphEdge",
    "GraphReport",
    "data_info",
    "end_name",
    "gate_horizon",
    "link",
    "loss_target",
    "loss_views_of",
    "spec_edges",
    "split_end",
]


def _built(ref: ComponentRef, where: Path, issues: list[SpecIssue]) -> Any:
    """The component a reference names, built once, here; None when the reference is invalid
    (the component checks report that) or the builder failed: a builder that raises, or
    returns what breaks its kind's contract, is an issue at ``where``."""
    if check_ref(ref, where):
        return None
    try:
        return lookup(ref).build(ref.args)
    except ContractError as exc:
        problem = str(exc)
    except Exception as exc:  # a plugin's builder: anything it raises is the user's to fix
        problem = f"{ref.kind} '{ref.type}' failed to build: {type(exc).__name__}: {exc}"
    issues.append(SpecIssue(where, problem, hint=f"fix the {ref.kind}'s builder (a plugin?)"))
    return None


def _link_edge(e: Edge, horizon: int, issues: list[SpecIssue]) -> GraphEdge:
    gate: Gate | None = _built(e.gate, e.gate_path, issues)
    loss: EdgeLoss | None = _built(e.loss, e.loss_path, issues)
    can_open, closed = True, False
    try:
        if gate is not None:
            can_open, closed = gate.can_open(horizon), gate.never_open
    except Exception as exc:
        gate = None
        where, kind = e.gate_path, type(exc).__name__
        issues.append(SpecIssue(where, f"gate '{e.gate.type}' raised {kind}: {exc}"))
    return GraphEdge(
        e.receiver,
        e.sender,
        e.gate,
        e.loss,
        e.path,
        gate,
        can_open=can_open,
        closed=closed,
        receiver_tap=e.receiver_tap,
        sender_tap=e.sender_tap,
        loss=loss,
    )


def _valid(spec: Spec, written: list[Edge]) -> list[Edge]:
    """Edges whose ends are nodes (or labels) and declared taps, not self loops, first of
    their pair."""
    seen: set[tuple[str, str | None, str, str | None]] = set()
    valid = []
    for e in written:
        if not ends_exist(spec, e) or e.sender == e.receiver:
            continue
        if e.pair not in seen:
            seen.add(e.pair)
            valid.append(e)
    return valid


def link(spec: Spec) -> GraphReport:
    """Link the spec's edges (building each gate and loss once) and run every graph check."""
    written, issues = spec_edges(spec)
    horizon = gate_horizon(spec)
    edges = [_link_edge(e, horizon, issues) for e in _valid(spec, written)]
    info = data_info(spec)
    classes = info.num_classes if info else None
    counts = {n: spec.nodes[n].num_classes or classes for n in spec.node_names}
    report = GraphReport(spec.node_names, edges, set(), counts, info, issues)
    # frozen: declared teachers, and nodes none of whose incoming edges can ever open
    opens = report.opens()
    report.frozen = {n for n, c in spec.nodes.items() if c.frozen or opens.in_degree(n) == 0}
    nx.set_node_attributes(report.graph, {n: n in report.frozen for n in spec.nodes}, "frozen")
    linked = Linked(spec, written, report)
    for check in CHECKS:
        issues.extend(check(linked))
    return report
