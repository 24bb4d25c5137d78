"""The spec as a graph: ``link(spec)`` turns the written edges into typed
:class:`GraphEdge`s (gates built, open/closed known), finds the frozen teachers and the class
counts, and runs every check that needs the whole graph (``checks.CHECKS``). Later stages read
the :class:`GraphReport` only; networkx stays inside this package.

Edges point from sender to receiver; the ground truth is a source named ``labels``.
"""

from __future__ import annotations

from ..spec.schema import Spec
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
    gate_of,
    loss_target,
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
    "gate_of",
    "link",
    "loss_target",
    "spec_edges",
    "split_end",
]


def _link_edge(e: Edge, horizon: int) -> GraphEdge:
    gate = gate_of(e.gate)
    return GraphEdge(
        e.receiver,
        e.sender,
        e.gate,
        e.loss,
        e.path,
        gate,
        can_open=gate is None or gate.can_open(horizon),
        closed=gate is not None and gate.never_open,
        receiver_tap=e.receiver_tap,
        sender_tap=e.sender_tap,
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


def _frozen(spec: Spec, edges: list[GraphEdge]) -> set[str]:
    """Declared teachers, and nodes none of whose incoming edges can ever open."""
    learns = {e.receiver for e in edges if e.can_open}
    return {name for name, node in spec.nodes.items() if node.frozen or name not in learns}


def link(spec: Spec) -> GraphReport:
    """Link the spec's edges and run every graph check."""
    written, issues = spec_edges(spec)
    horizon = gate_horizon(spec)
    edges = [_link_edge(e, horizon) for e in _valid(spec, written)]
    info = data_info(spec)
    classes = info.num_classes if info else None
    counts = {n: spec.nodes[n].num_classes or classes for n in spec.node_names}
    linked = Linked(spec, written, edges, _frozen(spec, edges), counts, info)
    for check in CHECKS:
        issues.extend(check(linked))
    return GraphReport(spec.node_names, edges, linked.frozen, counts, info, issues)
