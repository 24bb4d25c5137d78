"""The graph stage's output: the edges as written (:class:`Edge`), the linked edges
(:class:`GraphEdge`: gate built, open/closed known) and the :class:`GraphReport` later stages
read. No networkx outside this package."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from ..components.data import DatasetInfo
from ..components.gates import Gate
from ..errors import Path, SpecIssue
from ..registry import DATASETS, GATES, LOSSES, UnknownComponentError
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
