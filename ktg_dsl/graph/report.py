"""The graph stage's output: the edges as written (:class:`Edge`), the linked edges
(:class:`GraphEdge`: gate and loss built, open/closed known) and the :class:`GraphReport`
later stages read. The report holds the graph as a networkx DiGraph and answers the graph
questions (who learns, who reads a teacher) from it; later stages read its answers and
:class:`GraphEdge` fields, not networkx attributes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx

from ..components.data import DatasetInfo
from ..contracts import EdgeLoss, Gate
from ..errors import Path, SpecIssue
from ..registry import DATASETS, LOSSES, UnknownComponentError
from ..spec.schema import LABELS, GateRef, LossRef, Spec

STEPS_GUESS = 1000  # steps per epoch assumed when gates run per step and the data is unknown


@dataclass(frozen=True)
class Edge:
    """An edge as written in the spec (either form), its loss resolved from the defaults."""

    receiver: str
    sender: str  # a node name, or LABELS
    gate: GateRef
    loss: LossRef
    path: Path  # where the edge is written in the spec
    receiver_tap: str | None = None  # a feature edge's ends name taps (to: a.f3)
    sender_tap: str | None = None
    loss_path: Path = ()  # where its loss is written: the edge, its receiver, or the defaults

    @property
    def is_labels(self) -> bool:
        return self.sender == LABELS

    @property
    def gate_path(self) -> Path:
        """Where its gate is written: a gate matrix cell, or the edge's ``gate`` key."""
        return self.path if self.path[:1] == ("gate_matrix",) else (*self.path, "gate")

    @property
    def pair(self) -> tuple[str, str | None, str, str | None]:
        """What makes an edge unique: both ends, taps included."""
        return (self.receiver, self.receiver_tap, self.sender, self.sender_tap)


@dataclass(frozen=True)
class GraphEdge:
    """A linked edge: both ends exist, written once. ``gate`` and ``loss`` are built once,
    here (None when their reference is invalid or their builder failed: both are issues of
    the report, so a checked report has every one); ``closed`` edges are cut off (never
    computed); ``can_open`` edges have a weight above 0 at some time of the run."""

    receiver: str
    sender: str
    gate_ref: GateRef
    loss_ref: LossRef
    path: Path
    gate: Gate | None
    can_open: bool
    closed: bool
    receiver_tap: str | None = None
    sender_tap: str | None = None
    loss: EdgeLoss | None = None

    @property
    def is_labels(self) -> bool:
        return self.sender == LABELS

    @property
    def on_features(self) -> bool:
        """A feature edge: its ends name taps (intermediate layers), not logits."""
        return self.receiver_tap is not None or self.sender_tap is not None

    @property
    def receiver_end(self) -> str:
        return end_name(self.receiver, self.receiver_tap)

    @property
    def sender_end(self) -> str:
        return end_name(self.sender, self.sender_tap)

    @property
    def key(self) -> str:
        return f"{self.sender_end}->{self.receiver_end}"


@dataclass
class GraphReport:
    """What the graph stage found: the linked edges in written order, the frozen teachers,
    each node's class count (None until the data is loaded), the dataset's description,
    every graph issue, and the graph itself (networkx: nodes ``labels`` and the models, an
    edge from each sender to each receiver it teaches, holding the linked edges between them
    as attribute ``edges``: a logits edge and feature edges may join one pair)."""

    nodes: list[str]
    edges: list[GraphEdge]
    frozen: set[str] = field(default_factory=set)
    class_counts: dict[str, int | None] = field(default_factory=dict)
    data_info: DatasetInfo | None = None
    issues: list[SpecIssue] = field(default_factory=list)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)

    def __post_init__(self) -> None:
        if not self.graph:
            self.graph = as_digraph(self.nodes, self.edges, self.frozen)

    def opens(self) -> nx.DiGraph:
        """The pairs joined by an edge whose weight is above 0 at some time (a view)."""
        return self._where(lambda e: e.can_open)

    def computed(self) -> nx.DiGraph:
        """The pairs joined by an edge that is computed, not cut off (a view)."""
        return self._where(lambda e: not e.closed)

    def _where(self, keep: Callable[[GraphEdge], bool]) -> nx.DiGraph:
        g = self.graph
        return nx.subgraph_view(g, filter_edge=lambda u, v: any(map(keep, g.edges[u, v]["edges"])))

    def readers(self, node: str) -> list[GraphEdge]:
        """The computed edges out of ``node``: what its outputs reach, receiver by receiver."""
        g = self.graph
        out = (e for _, _, es in g.out_edges(node, data="edges") for e in es)
        return [e for e in out if not e.closed]

    @property
    def open_edges(self) -> list[GraphEdge]:
        """Edges that are computed (not cut off)."""
        return [e for e in self.edges if not e.closed]

    def gate_table(self) -> list[list[str]]:
        """Gate names of the logits edges as a receivers x senders table (labels on the
        diagonal), for display."""
        index = {n: i for i, n in enumerate(self.nodes)}
        table = [["cutoff"] * len(self.nodes) for _ in self.nodes]
        for e in self.edges:
            if e.on_features:
                continue
            r = index[e.receiver]
            table[r][r if e.is_labels else index[e.sender]] = str(e.gate_ref)
        return table

    def to_networkx(self) -> nx.DiGraph:
        """A copy of the graph (see the class), for a user's own questions."""
        return self.graph.copy()


def as_digraph(nodes: list[str], edges: list[GraphEdge], frozen: set[str]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_node(LABELS, kind="labels")
    g.add_nodes_from(nodes, kind="model")
    nx.set_node_attributes(g, {n: n in frozen for n in nodes}, "frozen")
    for e in edges:
        if g.has_edge(e.sender, e.receiver):
            g.edges[e.sender, e.receiver]["edges"].append(e)
        else:
            g.add_edge(e.sender, e.receiver, edges=[e])
    return g


def end_name(node: str, tap: str | None) -> str:
    """An edge end as written: ``node`` for its logits, ``node.tap`` for a layer."""
    return node if tap is None else f"{node}.{tap}"


def split_end(text: str) -> tuple[str, str | None]:
    """``a.f3`` -> (a, f3); ``a`` -> (a, None); ``a.`` -> (a, ''): a tap left unnamed, which
    the graph checks report (it is not the node's logits)."""
    node, dot, tap = text.partition(".")
    return node, tap if dot else None


def loss_target(ref: LossRef) -> str | None:
    """What a loss compares: ``labels`` (the ground truth), ``logits`` (two models' outputs),
    ``features`` (two taps) or ``outputs`` (logits or taps, alike at both ends); None if the
    loss is unknown."""
    try:
        target: str | None = LOSSES.get(ref.type).meta.target
        return target
    except UnknownComponentError:
        return None


def loss_views_of(ref: LossRef) -> str | None:
    """Whose views a views loss compares (``LossMeta.views_of``): ``self``, the receiver's
    own two (the self edge), ``peers``, the receiver's with a sender's; None if either, or
    the loss is unknown."""
    try:
        views_of: str | None = LOSSES.get(ref.type).meta.views_of
        return views_of
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
    info = comp.meta.info
    if info is None:
        return None
    try:
        result: DatasetInfo = info(spec.data.dataset.args, spec.data.root)
        return result
    except Exception:
        return None
