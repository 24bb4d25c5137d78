"""The spec as a graph: ``link(spec)`` turns the written edges into typed :class:`GraphEdge`s
(gates built, open/closed known), finds the frozen teachers and the class counts, and runs the
checks that need the whole graph. Later stages read the :class:`GraphReport` only; networkx
stays inside this module.

Edges point from sender to receiver; the ground truth is a source named ``labels``. Messages
speak of the user's nodes and edges, like dbt's linker: "'r32a' reads from 'r33', which is not
a node". Each check is a small function of the linked graph that returns its issues; ``CHECKS``
lists them in the order their messages are produced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx

from .components.data import DatasetInfo
from .components.gates import Gate
from .errors import Path, SpecIssue, choices_hint, format_path
from .registry import DATASETS, GATES, LOSSES, UnknownComponentError
from .spec.schema import LABELS, GateRef, LossRef, Spec

STEPS_GUESS = 1000  # steps per epoch assumed when gates run per step and the data is unknown


@dataclass(frozen=True)
class Edge:
    """An edge as written in the spec (either form), its loss resolved from the defaults."""

    receiver: str
    sender: str  # a node name, or LABELS
    gate: GateRef
    loss: LossRef
    path: Path  # where the edge is written in the spec

    @property
    def is_labels(self) -> bool:
        return self.sender == LABELS


@dataclass(frozen=True)
class GraphEdge:
    """A linked edge: both ends exist, written once. ``gate`` is the built gate (None when
    its reference is invalid, which the component checks report); ``closed`` edges are cut
    off (never computed); ``can_open`` edges have a weight above 0 at some time of the run."""

    receiver: str
    sender: str
    gate_ref: GateRef
    loss_ref: LossRef
    path: Path
    gate: Gate | None
    can_open: bool
    closed: bool

    @property
    def is_labels(self) -> bool:
        return self.sender == LABELS

    @property
    def key(self) -> str:
        return f"{self.sender}->{self.receiver}"


@dataclass
class GraphReport:
    """What the graph stage found: the linked edges in written order, the frozen teachers,
    each node's class count (None until the data is loaded), the dataset's description and
    every graph issue."""

    nodes: list[str]
    edges: list[GraphEdge]
    frozen: set[str] = field(default_factory=set)
    class_counts: dict[str, int | None] = field(default_factory=dict)
    data_info: DatasetInfo | None = None
    issues: list[SpecIssue] = field(default_factory=list)

    @property
    def open_edges(self) -> list[GraphEdge]:
        """Edges that are computed (not cut off)."""
        return [e for e in self.edges if not e.closed]

    def gate_table(self) -> list[list[str]]:
        """Gate names as a receivers x senders table (labels on the diagonal), for display."""
        index = {n: i for i, n in enumerate(self.nodes)}
        table = [["cutoff"] * len(self.nodes) for _ in self.nodes]
        for e in self.edges:
            r = index[e.receiver]
            table[r][r if e.is_labels else index[e.sender]] = str(e.gate_ref)
        return table

    def to_networkx(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph: nodes ``labels`` and the models, one edge per
        linked edge with its :class:`GraphEdge` as attribute ``edge``."""
        g = nx.DiGraph()
        g.add_node(LABELS, kind="labels")
        for name in self.nodes:
            g.add_node(name, kind="model", frozen=name in self.frozen)
        for e in self.edges:
            g.add_edge(e.sender, e.receiver, edge=e)
        return g


def gate_of(ref: GateRef) -> Gate | None:
    """The gate instance, or None when the reference is invalid (reported elsewhere)."""
    try:
        gate: Gate = GATES.get(ref.type).build(ref.args)
        return gate
    except Exception:
        return None


def loss_target(ref: LossRef) -> str | None:
    """What a loss compares the receiver with: ``labels`` or ``logits`` (None if unknown)."""
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
    """The dataset's class count and input shape as its registration tells them, unloaded."""
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


# --------------------------------------------------------------------------- written edges


def spec_edges(spec: Spec) -> tuple[list[Edge], list[SpecIssue]]:
    """The edges of either form, losses resolved (edge, then receiver, then defaults)."""
    issues: list[SpecIssue] = []
    if spec.edges is not None and spec.gate_matrix is not None:
        issues.append(
            SpecIssue(
                ("gate_matrix",),
                "both 'edges' and 'gate_matrix' are given",
                hint="write the graph one way: remove one of them",
            )
        )
    raw: list[RawEdge]
    if spec.edges is not None:
        raw = [(e.to, e.from_, e.gate, e.loss, ("edges", i)) for i, e in enumerate(spec.edges)]
    elif spec.gate_matrix is not None:
        raw = _matrix_edges(spec, issues)
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
        node = spec.nodes.get(to)
        if loss is None and frm == LABELS:
            loss = (node.labels_loss if node else None) or spec.defaults.labels_loss
        elif loss is None:
            loss = (node.loss if node else None) or spec.defaults.loss
        edges.append(Edge(to, frm, gate, loss, path))
    return edges, issues


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


# --------------------------------------------------------------------------- linking


@dataclass
class Linked:
    """Everything the checks read: the spec, its written edges, the linked (valid) ones."""

    spec: Spec
    written: list[Edge]
    edges: list[GraphEdge]
    frozen: set[str]
    counts: dict[str, int | None]
    info: DatasetInfo | None

    def incoming(self, name: str) -> list[GraphEdge]:
        return [e for e in self.edges if e.receiver == name]


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
    )


def _valid(spec: Spec, written: list[Edge]) -> list[Edge]:
    """Edges whose ends are nodes (or labels), not self loops, first of their pair."""
    seen: set[tuple[str, str]] = set()
    valid = []
    for e in written:
        if e.receiver not in spec.nodes or e.sender == e.receiver:
            continue
        if e.sender != LABELS and e.sender not in spec.nodes:
            continue
        if (e.receiver, e.sender) not in seen:
            seen.add((e.receiver, e.sender))
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


# --------------------------------------------------------------------------- checks

_NODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", flags=re.ASCII)


def check_node_names(g: Linked) -> list[SpecIssue]:
    issues = []
    for name in g.spec.nodes:
        if name == LABELS:
            issues.append(
                SpecIssue(
                    ("nodes", name),
                    "'labels' is reserved for the ground truth",
                    hint="name the node something else",
                )
            )
        elif not _NODE_NAME.fullmatch(name):
            issues.append(
                SpecIssue(
                    ("nodes", name),
                    f"node name {name!r} is not allowed",
                    hint="1 to 64 ASCII letters, digits, '_' and '-', starting with a letter "
                    "or '_'",
                )
            )
    return issues


def check_edge_ends(g: Linked) -> list[SpecIssue]:
    """Ends that are not nodes, self edges and duplicates, in written order."""
    names = g.spec.node_names
    issues: list[SpecIssue] = []
    first: dict[tuple[str, str], Edge] = {}
    for e in g.written:
        if e.receiver not in g.spec.nodes:
            hint = (
                "the labels are a source, not a receiver"
                if e.receiver == LABELS
                else choices_hint(e.receiver, names)
            )
            issues.append(
                SpecIssue((*e.path, "to"), f"edge into '{e.receiver}', which is not a node", hint)
            )
        if e.sender != LABELS and e.sender not in g.spec.nodes:
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
        before = first.setdefault((e.receiver, e.sender), e)
        if before is not e:
            issues.append(
                SpecIssue(
                    e.path,
                    f"duplicate edge {e.sender} -> {e.receiver}",
                    hint=f"first written at {format_path(before.path)}",
                )
            )
    return issues


def check_losses_fit_edges(g: Linked) -> list[SpecIssue]:
    """A labels edge needs a labels loss; a node -> node edge a loss between models."""
    issues = []
    for e in g.edges:
        target = loss_target(e.loss_ref)
        if e.is_labels and target == "logits":
            issues.append(
                SpecIssue(
                    e.path,
                    f"the labels edge into '{e.receiver}' uses the "
                    f"'{e.loss_ref.type}' loss, which compares two models",
                    hint="use a labels loss such as ce",
                )
            )
        elif not e.is_labels and target == "labels":
            issues.append(
                SpecIssue(
                    e.path,
                    f"edge {e.sender} -> {e.receiver} uses the "
                    f"'{e.loss_ref.type}' loss, which needs the labels",
                    hint="use a loss between models such as kl",
                )
            )
    return issues


def check_frozen(g: Linked) -> list[SpecIssue]:
    """Frozen teachers: declared ones must not learn, and every one needs weights."""
    issues = []
    for name, node in g.spec.nodes.items():
        can_learn = any(e.can_open for e in g.incoming(name))
        where: Path = ("nodes", name)
        if node.frozen and can_learn:
            issues.append(
                SpecIssue(
                    (*where, "frozen"),
                    f"'{name}' is marked frozen but receives edges that open",
                    hint="cut those edges off or remove 'frozen: true'",
                )
            )
        if node.frozen and node.checkpoint is None:
            issues.append(
                SpecIssue(
                    where,
                    f"'{name}' is frozen without a checkpoint: it teaches with random weights",
                    severity="warning",
                    hint="add 'checkpoint:' with the teacher's weights",
                )
            )
        elif not node.frozen and not can_learn and node.checkpoint is None:
            issues.append(
                SpecIssue(
                    where,
                    f"'{name}' receives no edge that can ever open, so it never trains; as a "
                    "frozen teacher it needs weights",
                    hint="add its weights as 'checkpoint:', or an edge that opens, e.g. from "
                    "labels",
                )
            )
    return issues


def check_isolated(g: Linked) -> list[SpecIssue]:
    """A node that neither teaches nor learns from another node trains alone: a warning."""
    if len(g.spec.nodes) < 2:
        return []
    issues = []
    for name in g.spec.node_names:
        gives = any(e.can_open for e in g.edges if e.sender == name)
        takes = any(e.can_open and not e.is_labels for e in g.incoming(name))
        if not gives and not takes:
            issues.append(
                SpecIssue(
                    ("nodes", name),
                    f"'{name}' neither teaches nor learns from another node: it trains alone",
                    severity="warning",
                    hint="add an edge to or from it",
                )
            )
    return issues


def check_class_counts(g: Linked) -> list[SpecIssue]:
    """Every node is evaluated on the labels, and a KL edge compares equal class counts."""
    issues = []
    classes = g.info.num_classes if g.info else None
    for name in g.spec.node_names:
        have = g.spec.nodes[name].num_classes
        if have and classes and have != classes:
            issues.append(
                SpecIssue(
                    ("nodes", name, "num_classes"),
                    f"'{name}' has {have} outputs but the dataset has {classes} classes",
                    hint="every node is evaluated on the labels: remove num_classes",
                )
            )
    for e in g.edges:
        if e.is_labels or e.closed or loss_target(e.loss_ref) != "logits":
            continue
        a, b = g.counts[e.sender], g.counts[e.receiver]
        if a is not None and b is not None and a != b:
            issues.append(
                SpecIssue(
                    e.path,
                    f"edge {e.sender} -> {e.receiver} compares {a} classes with {b}",
                    hint="nodes joined by a KL edge need the same class count",
                )
            )
    return issues


CHECKS: list[Callable[[Linked], list[SpecIssue]]] = [
    check_node_names,
    check_edge_ends,
    check_losses_fit_edges,
    check_frozen,
    check_isolated,
    check_class_counts,
]
