"""The spec as a graph (networkx), and the checks that need the whole graph.

Edges point from sender to receiver; the ground truth is a source node named ``labels``.
Messages speak of the user's nodes and edges, like dbt's linker: "'r32a' reads from 'r33'
which is not a node".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .components.data import DatasetInfo
from .components.gates import Gate
from .errors import Path, SpecIssue, choices_hint
from .registry import DATASETS, GATES, LOSSES, UnknownComponentError
from .spec.schema import LABELS, GateRef, LossRef, Spec

STEPS_GUESS = 1000  # steps per epoch assumed when gates run per step and the data is unknown


@dataclass(frozen=True)
class Edge:
    receiver: str
    sender: str  # a node name, or LABELS
    gate: GateRef
    loss: LossRef
    path: Path  # where the edge is written in the spec

    @property
    def is_labels(self) -> bool:
        return self.sender == LABELS


@dataclass
class GraphReport:
    graph: nx.DiGraph
    edges: list[Edge]
    frozen: set[str] = field(default_factory=set)
    class_counts: dict[str, int | None] = field(default_factory=dict)
    data_info: DatasetInfo | None = None
    issues: list[SpecIssue] = field(default_factory=list)


def gate_of(ref: GateRef) -> Gate | None:
    """The gate instance, or None when the reference is invalid (reported elsewhere)."""
    try:
        gate: Gate = GATES.get(ref.type).build(ref.args)
        return gate
    except Exception:
        return None


def loss_target(ref: LossRef) -> str | None:
    try:
        target: str | None = LOSSES.get(ref.type).meta.get("target")
        return target
    except UnknownComponentError:
        return None


def gate_horizon(spec: Spec) -> int:
    """T of the gates: epochs, or (a guess of) the total number of steps."""
    if spec.train.gate_unit == "epoch":
        return spec.train.epochs
    return spec.train.epochs * STEPS_GUESS


def data_info(spec: Spec) -> DatasetInfo | None:
    try:
        comp = DATASETS.get(spec.data.dataset.type)
    except UnknownComponentError:
        return None
    info = comp.meta.get("info")
    if info is None:
        return None
    try:
        result: DatasetInfo = info(spec.data.dataset.args, spec.data.root)
        return result
    except Exception:
        return None


def spec_edges(spec: Spec) -> tuple[list[Edge], list[SpecIssue]]:
    """The edges of either form, losses resolved (edge, then receiver, then defaults)."""
    issues: list[SpecIssue] = []
    names = spec.node_names
    raw: list[tuple[str, str, GateRef, LossRef | None, Path]] = []
    if spec.edges is not None and spec.gate_matrix is not None:
        issues.append(
            SpecIssue(
                ("gate_matrix",),
                "both 'edges' and 'gate_matrix' are given",
                hint="write the graph one way: remove one of them",
            )
        )
    if spec.edges is not None:
        for i, e in enumerate(spec.edges):
            raw.append((e.to, e.from_, e.gate, e.loss, ("edges", i)))
    elif spec.gate_matrix is not None:
        n = len(names)
        if len(spec.gate_matrix) != n:
            issues.append(
                SpecIssue(
                    ("gate_matrix",),
                    f"the gate matrix has {len(spec.gate_matrix)} rows but there are {n} nodes",
                    hint=f"one row per node, in node order: {', '.join(names)}",
                )
            )
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
    else:
        issues.append(
            SpecIssue(
                (),
                "the spec has no edges",
                hint="add 'edges:' (a list of {to, from, gate}) or 'gate_matrix:'",
            )
        )
    edges = []
    for to, frm, gate, loss, path in raw:
        node = spec.nodes.get(to)
        if loss is None:
            if frm == LABELS:
                loss = (node.labels_loss if node else None) or spec.defaults.labels_loss
            else:
                loss = (node.loss if node else None) or spec.defaults.loss
        edges.append(Edge(to, frm, gate, loss, path))
    return edges, issues


def _check_names(spec: Spec) -> list[SpecIssue]:
    import re

    issues = []
    for name in spec.nodes:
        if name == LABELS:
            issues.append(
                SpecIssue(
                    ("nodes", name),
                    "'labels' is reserved for the ground truth",
                    hint="name the node something else",
                )
            )
        elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", name, flags=re.ASCII):
            issues.append(
                SpecIssue(
                    ("nodes", name),
                    f"node name {name!r} is not allowed",
                    hint="1 to 64 ASCII letters, digits, '_' and '-', starting with a letter "
                    "or '_'",
                )
            )
    return issues


def _check_edge_ends(spec: Spec, edges: list[Edge]) -> list[Edge]:
    """Edges whose two ends exist; issues for the others are added by the caller."""
    return [
        e
        for e in edges
        if e.receiver in spec.nodes
        and (e.sender == LABELS or e.sender in spec.nodes)
        and e.sender != e.receiver
    ]


def build_graph(spec: Spec) -> GraphReport:
    names = spec.node_names
    edges, issues = spec_edges(spec)
    issues.extend(_check_names(spec))
    info = data_info(spec)
    horizon = gate_horizon(spec)

    # -- edge ends, self edges, duplicates
    first_seen: dict[tuple[str, str], Edge] = {}
    for e in edges:
        if e.receiver not in spec.nodes:
            hint = (
                "the labels are a source, not a receiver"
                if e.receiver == LABELS
                else choices_hint(e.receiver, names)
            )
            issues.append(
                SpecIssue(
                    (*e.path, "to"), f"edge into '{e.receiver}', which is not a node", hint=hint
                )
            )
        if e.sender != LABELS and e.sender not in spec.nodes:
            issues.append(
                SpecIssue(
                    (*e.path, "from"),
                    f"'{e.receiver}' reads from '{e.sender}', which is not a node",
                    hint=choices_hint(e.sender, [*names, LABELS]),
                )
            )
        if e.sender == e.receiver:
            issues.append(
                SpecIssue(
                    (*e.path, "from"),
                    f"'{e.receiver}' cannot teach itself",
                    hint="write 'from: labels' for the supervised edge",
                )
            )
        key = (e.receiver, e.sender)
        if key in first_seen:
            from .errors import format_path

            issues.append(
                SpecIssue(
                    e.path,
                    f"duplicate edge {e.sender} -> {e.receiver}",
                    hint=f"first written at {format_path(first_seen[key].path)}",
                )
            )
        else:
            first_seen[key] = e
    valid = [
        first_seen[(e.receiver, e.sender)]
        for e in _check_edge_ends(spec, edges)
        if first_seen.get((e.receiver, e.sender)) is e
    ]

    # -- losses fit their edges
    for e in valid:
        target = loss_target(e.loss)
        if e.is_labels and target == "logits":
            issues.append(
                SpecIssue(
                    (*e.path,),
                    f"the labels edge into '{e.receiver}' uses the "
                    f"'{e.loss.type}' loss, which compares two models",
                    hint="use a labels loss such as ce",
                )
            )
        elif not e.is_labels and target == "labels":
            issues.append(
                SpecIssue(
                    (*e.path,),
                    f"edge {e.sender} -> {e.receiver} uses the "
                    f"'{e.loss.type}' loss, which needs the labels",
                    hint="use a loss between models such as kl",
                )
            )

    # -- the graph
    g = nx.DiGraph()
    g.add_node(LABELS, kind="labels")
    for name, node in spec.nodes.items():
        g.add_node(name, kind="model", model=node.model, checkpoint=node.checkpoint)
    for e in valid:
        gate = gate_of(e.gate)
        g.add_edge(
            e.sender,
            e.receiver,
            edge=e,
            gate=gate,
            open=gate is None or gate.can_open(horizon),
            closed=gate is not None and gate.never_open,
        )

    # -- which nodes train; frozen teachers
    frozen: set[str] = set()
    for name, node in spec.nodes.items():
        incoming = [d for _, _, d in g.in_edges(name, data=True)]
        can_learn = any(d["open"] for d in incoming)
        where: Path = ("nodes", name)
        if node.frozen:
            frozen.add(name)
            if can_learn:
                issues.append(
                    SpecIssue(
                        (*where, "frozen"),
                        f"'{name}' is marked frozen but receives edges that open",
                        hint="cut those edges off or remove 'frozen: true'",
                    )
                )
            if node.checkpoint is None:
                issues.append(
                    SpecIssue(
                        where,
                        f"'{name}' is frozen without a checkpoint: it teaches with random weights",
                        severity="warning",
                        hint="add 'checkpoint:' with the teacher's weights",
                    )
                )
        elif not can_learn:
            frozen.add(name)
            if node.checkpoint is None:
                issues.append(
                    SpecIssue(
                        where,
                        f"'{name}' receives no edge that can ever open, "
                        "so it never trains; as a frozen teacher it needs "
                        "weights",
                        hint="add its weights as 'checkpoint:', or "
                        "an edge that opens, e.g. from labels",
                    )
                )
    g.graph["frozen"] = frozen

    # -- isolated nodes
    if len(names) > 1:
        for name in names:
            gives = any(d["open"] for _, r, d in g.out_edges(name, data=True) if r != name)
            takes = any(d["open"] for s, _, d in g.in_edges(name, data=True) if s != LABELS)
            if not gives and not takes:
                issues.append(
                    SpecIssue(
                        ("nodes", name),
                        f"'{name}' neither teaches nor learns from another node: it trains alone",
                        severity="warning",
                        hint="add an edge to or from it",
                    )
                )

    # -- class counts
    default_classes = info.num_classes if info else None
    counts: dict[str, int | None] = {n: spec.nodes[n].num_classes or default_classes for n in names}
    for name in names:
        # every node is evaluated on the labels: its output must have one logit per class
        have = spec.nodes[name].num_classes
        if have and default_classes and have != default_classes:
            issues.append(
                SpecIssue(
                    ("nodes", name, "num_classes"),
                    f"'{name}' has {have} outputs but the dataset has {default_classes} classes",
                    hint="every node is evaluated on the labels: remove num_classes",
                )
            )
    for e in valid:
        if e.is_labels or g.edges[e.sender, e.receiver]["closed"]:
            continue
        if loss_target(e.loss) != "logits":
            continue
        a, b = counts[e.sender], counts[e.receiver]
        if a is not None and b is not None and a != b:
            issues.append(
                SpecIssue(
                    e.path,
                    f"edge {e.sender} -> {e.receiver} compares {a} classes with {b}",
                    hint="nodes joined by a KL edge need the same class count",
                )
            )

    issues.extend(_check_search(spec))
    return GraphReport(g, valid, frozen, counts, info, issues)


def _check_search(spec: Spec) -> list[SpecIssue]:
    s = spec.search
    if s is None:
        return []
    names = spec.node_names
    issues: list[SpecIssue] = []
    node = s.objective.node
    if node is not None and node not in spec.nodes:
        issues.append(
            SpecIssue(
                ("search", "objective", "node"),
                f"the objective names '{node}', which is not a node",
                hint=choices_hint(node, names),
            )
        )
    for name in s.models:
        if name not in spec.nodes:
            issues.append(
                SpecIssue(
                    ("search", "models", name),
                    f"model choices for '{name}', which is not a node",
                    hint=choices_hint(name, names),
                )
            )
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(s.edges):
        if e.to not in spec.nodes:
            issues.append(
                SpecIssue(
                    ("search", "edges", i, "to"),
                    f"'{e.to}' is not a node",
                    hint=choices_hint(e.to, names),
                )
            )
        if e.from_ != LABELS and e.from_ not in spec.nodes:
            issues.append(
                SpecIssue(
                    ("search", "edges", i, "from"),
                    f"'{e.from_}' is not a node",
                    hint=choices_hint(e.from_, [*names, LABELS]),
                )
            )
        if (e.to, e.from_) in seen:
            issues.append(
                SpecIssue(("search", "edges", i), f"duplicate search edge {e.from_} -> {e.to}")
            )
        seen.add((e.to, e.from_))
        if e.fixed and e.gates:
            issues.append(
                SpecIssue(
                    ("search", "edges", i), "an edge is either fixed or has gate choices, not both"
                )
            )
        if not e.fixed and e.gates is not None and not e.gates:
            issues.append(
                SpecIssue(
                    ("search", "edges", i, "gates"),
                    "no gate choices",
                    hint="list at least one gate, or write 'fixed: true'",
                )
            )
    if not s.gates:
        issues.append(
            SpecIssue(("search", "gates"), "no gate choices", hint="list at least one gate")
        )
    for i, p in enumerate(s.params):
        where = ("search", "params", i)
        if p.log and p.step is not None:
            issues.append(
                SpecIssue(
                    where,
                    "a range is either on a log scale or stepped, not both",
                    hint="remove 'step' or 'log'",
                )
            )
        if p.integer and any(v is not None and float(v) != int(v) for v in (p.low, p.high, p.step)):
            issues.append(
                SpecIssue(
                    where,
                    "an integer range needs whole low, high and step",
                    hint="e.g. {low: 1, high: 8, step: 1}",
                )
            )
        if s.sampler.type == "bruteforce" and not p.integer and p.step is None:
            issues.append(
                SpecIssue(
                    ("search", "params", i),
                    "the bruteforce sampler needs a finite space",
                    hint="give this range a 'step'",
                )
            )
        if p.low >= p.high:
            issues.append(
                SpecIssue(
                    ("search", "params", i), f"low ({p.low:g}) must be below high ({p.high:g})"
                )
            )
        if p.log and p.low <= 0:
            issues.append(SpecIssue(("search", "params", i, "low"), "a log range needs low > 0"))
    return issues


def edge_matrix_view(spec: Spec, edges: list[Edge]) -> list[list[Any]]:
    """Gate names as a receivers x senders table (labels on the diagonal), for display."""
    names = spec.node_names
    index = {n: i for i, n in enumerate(names)}
    table: list[list[Any]] = [["cutoff"] * len(names) for _ in names]
    for e in edges:
        r = index[e.receiver]
        c = r if e.is_labels else index[e.sender]
        table[r][c] = str(e.gate)
    return table
