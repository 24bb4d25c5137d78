"""The edges a spec writes, in either form (an ``edges`` list or a ``gate_matrix``), with
each edge's loss resolved: the edge's own, then the receiver's, then the defaults."""

from __future__ import annotations

from ..errors import Path, SpecIssue
from ..spec.schema import LABELS, GateRef, LossRef, Spec
from .report import Edge, split_end


def spec_edges(spec: Spec) -> tuple[list[Edge], list[SpecIssue]]:
    """The edges of either form, losses resolved (edge, then receiver, then defaults)."""
    issues: list[SpecIssue] = []
    listed: list[RawEdge] = [
        (e.to, e.from_, e.gate, e.loss, ("edges", i)) for i, e in enumerate(spec.edges or [])
    ]
    # a gate matrix writes logits edges; feature edges (whose ends name taps) may sit beside it
    features_only = all("." in to or "." in frm for to, frm, *_ in listed)
    if spec.edges is not None and spec.gate_matrix is not None and not features_only:
        issues.append(
            SpecIssue(
                ("gate_matrix",),
                "both 'edges' and 'gate_matrix' are given",
                hint="write the graph one way: remove one of them",
            )
        )
    raw: list[RawEdge]
    if spec.gate_matrix is not None:
        # both forms (an error above): read both, so that no check says a node never trains,
        # and leave out what the list writes again (the conflict is the one message)
        matrix = _matrix_edges(spec, issues)
        written = {(to, frm) for to, frm, *_ in matrix}
        raw = matrix + [e for e in listed if (e[0], e[1]) not in written]
    elif spec.edges is not None:
        raw = listed
    else:
        raw = []
        issues.append(
            SpecIssue(
                (),
                "the spec has no edges",
                hint="add 'edges:' (a list of {to, from, gate}) or 'gate_matrix:'",
            )
        )
    edges = []
    for to, frm, gate, loss, path in raw:
        receiver, receiver_tap = split_end(to)
        sender, sender_tap = split_end(frm)
        resolved, loss_path = _loss_of(spec, receiver, frm == LABELS, loss, path)
        edges.append(
            Edge(receiver, sender, gate, resolved, path, receiver_tap, sender_tap, loss_path)
        )
    return edges, issues


def _loss_of(
    spec: Spec, receiver: str, labels: bool, loss: LossRef | None, path: Path
) -> tuple[LossRef, Path]:
    """The edge's loss and where it is written: the edge's own, the receiver's, the
    defaults'."""
    if loss is not None:
        return loss, (*path, "loss")
    key = "labels_loss" if labels else "loss"
    node = spec.nodes.get(receiver)
    own: LossRef | None = getattr(node, key) if node else None
    if own is not None:
        return own, ("nodes", receiver, key)
    default: LossRef = getattr(spec.defaults, key)
    return default, ("defaults", key)


RawEdge = tuple[str, str, GateRef, LossRef | None, Path]


def _matrix_edges(spec: Spec, issues: list[SpecIssue]) -> list[RawEdge]:
    assert spec.gate_matrix is not None
    names = spec.node_names
    n = len(names)
    if len(spec.gate_matrix) != n:
        issues.append(
            SpecIssue(
                ("gate_matrix",),
                f"the gate matrix has {len(spec.gate_matrix)} rows but there are {n} nodes",
                hint=f"one row per node, in node order: {', '.join(names)}",
            )
        )
    raw: list[RawEdge] = []
    for r, row in enumerate(spec.gate_matrix):
        if len(row) != n:
            issues.append(
                SpecIssue(
                    ("gate_matrix", r),
                    f"row {r} has {len(row)} entries but there are {n} nodes",
                    hint="one column per sender in node order; the diagonal is the labels edge",
                )
            )
        if r >= n:
            continue
        for c, gate in enumerate(row[:n]):
            sender = LABELS if r == c else names[c]
            raw.append((names[r], sender, gate, None, ("gate_matrix", r, c)))
    return raw
