"""The checks that need the whole graph, each a small function of the linked graph that
returns its issues, in the user's words (dbt's linker: "'r32a' reads from 'r33', which is not
a node"). ``CHECKS`` lists them in the order their messages are produced."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx

from ..components.data import DatasetInfo
from ..errors import Path, SpecIssue, choices_hint, format_path
from ..spec.schema import LABELS, Spec
from .checkpoints import check_checkpoints
from .data import (
    check_batch_needs,
    check_class_counts,
    check_data_files,
    check_training_size,
)
from .placement import check_placement
from .report import Edge, GraphEdge, GraphReport, end_name, loss_target
from .schedule import check_schedules
from .ssl import check_self_supervised


@dataclass
class Linked:
    """Everything the checks read: the spec, its written edges, the linked (valid) ones in
    the report (and its graph)."""

    spec: Spec
    written: list[Edge]
    report: GraphReport

    @property
    def edges(self) -> list[GraphEdge]:
        return self.report.edges

    @property
    def frozen(self) -> set[str]:
        return self.report.frozen

    @property
    def counts(self) -> dict[str, int | None]:
        return self.report.class_counts

    @property
    def info(self) -> DatasetInfo | None:
        return self.report.data_info

    def broken(self) -> set[str]:
        """Nodes whose edges are not all known because of an error elsewhere: an end of a
        written edge whose other end is not a node (or is itself), and a node whose gate
        matrix row or column is missing. Checks of what a node learns or teaches stay quiet
        about them: their messages would only follow from that error."""
        nodes = self.spec.nodes
        out: set[str] = set()
        for e in self.written:
            if e.receiver not in nodes or (e.sender != LABELS and e.sender not in nodes):
                out |= {e.receiver, e.sender} & set(nodes)
            elif e.sender == e.receiver:
                out.add(e.receiver)
        matrix, names = self.spec.gate_matrix, self.spec.node_names
        if matrix is not None and self.spec.edges is None:
            out |= set(names[len(matrix) :])
            for r, row in enumerate(matrix[: len(names)]):
                if len(row) != len(names):
                    out |= {names[r], *names[len(row) :]}
        return out


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


def ends_exist(spec: Spec, e: Edge) -> bool:
    """Both ends are nodes (or the labels), and every tap an end names is declared."""
    for node, tap in ((e.receiver, e.receiver_tap), (e.sender, e.sender_tap)):
        if node == LABELS:
            if tap is not None or node == e.receiver:
                return False
            continue
        config = spec.nodes.get(node)
        if config is None or (tap is not None and tap not in (config.taps or {})):
            return False
    return True


def _end_issues(g: Linked, e: Edge) -> list[SpecIssue]:
    names = g.spec.node_names
    issues = []
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
    for key, node, tap in (("to", e.receiver, e.receiver_tap), ("from", e.sender, e.sender_tap)):
        issues += _tap_issues(g.spec, (*e.path, key), node, tap)
    return issues


def _tap_issues(spec: Spec, where: Path, node: str, tap: str | None) -> list[SpecIssue]:
    if tap is None:
        return []
    if node == LABELS:
        return [SpecIssue(where, "the labels have no taps", hint="write 'from: labels'")]
    config = spec.nodes.get(node)
    if config is None:
        return []  # reported as an unknown node
    taps = config.taps or {}
    if tap in taps:
        return []
    if not tap:
        return [
            SpecIssue(
                where,
                f"'{node}.' names no tap after the '.'",
                hint=f"write '{node}' for its logits, or '{node}.<tap>' for one of its taps",
            )
        ]
    hint = (
        choices_hint(tap, taps)
        if taps
        else f"declare it: nodes.{node}.taps: {{{tap}: <module path, e.g. layer3>}}"
    )
    return [SpecIssue(where, f"'{node}' has no tap '{tap}'", hint=hint)]


def check_edge_ends(g: Linked) -> list[SpecIssue]:
    """Ends that are not nodes or declared taps, self edges and duplicates, in written
    order."""
    issues: list[SpecIssue] = []
    first: dict[tuple[str, str | None, str, str | None], Edge] = {}
    for e in g.written:
        issues += _end_issues(g, e)
        if e.sender == e.receiver:
            issues.append(
                SpecIssue(
                    (*e.path, "from"),
                    f"'{e.receiver}' cannot teach itself",
                    hint="name another node's tap: a feature edge joins two nodes"
                    if e.sender_tap or e.receiver_tap
                    else "write 'from: labels' for the supervised edge",
                )
            )
        before = first.setdefault(e.pair, e)
        if before is not e:
            sender, receiver = (
                end_name(e.sender, e.sender_tap),
                end_name(e.receiver, e.receiver_tap),
            )
            issues.append(
                SpecIssue(
                    e.path,
                    f"duplicate edge {sender} -> {receiver}",
                    hint=f"first written at {format_path(before.path)}",
                )
            )
    return issues


def check_losses_fit_edges(g: Linked) -> list[SpecIssue]:
    """A labels edge needs a labels loss; a node -> node edge a loss between models, on
    logits for a logits loss and on taps for a feature loss. (In a self-supervised graph the
    self edge and the labels and logits losses are ``check_self_supervised``'s.)"""
    issues = []
    ssl = g.spec.self_supervised is not None
    for e in g.edges:
        target = loss_target(e.loss_ref)
        if ssl and (e.is_labels or target in ("labels", "logits")):
            continue  # said in a self-supervised graph's words (graph/ssl.py)
        if e.is_labels and target in ("logits", "features", "outputs"):
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
                    f"edge {e.sender_end} -> {e.receiver_end} uses the "
                    f"'{e.loss_ref.type}' loss, which needs the labels",
                    hint="use a loss between models such as kl",
                )
            )
        elif not e.is_labels:
            issues += _ends_fit_loss(e, target)
    return issues


def _ends_fit_loss(e: GraphEdge, target: str | None) -> list[SpecIssue]:
    both = e.receiver_tap is not None and e.sender_tap is not None
    what = f"edge {e.sender_end} -> {e.receiver_end} uses the '{e.loss_ref.type}' loss"
    if target == "logits" and e.on_features:
        return [
            SpecIssue(
                e.path,
                f"{what}, which compares logits, but its ends name taps",
                hint=f"write the edge between nodes (to: {e.receiver}, from: {e.sender}), or "
                "use a feature loss: attention, hint, similarity or rkd",
            )
        ]
    if target == "features" and not both:
        return [
            SpecIssue(
                e.path,
                f"{what}, which compares intermediate features: both ends must name taps",
                hint=f"e.g. to: {e.receiver}.f3, from: {e.sender}.f3, with nodes.<name>.taps "
                "declared",
            )
        ]
    if target == "outputs" and e.on_features and not both:
        return [
            SpecIssue(
                e.path,
                f"{what} between a tap and logits",
                hint="name a tap at both ends, or at neither",
            )
        ]
    return []


def check_frozen(g: Linked) -> list[SpecIssue]:
    """Frozen teachers: declared ones must not learn, and every one needs weights."""
    issues = []
    broken = g.broken()
    opens = g.report.opens()
    for name, node in g.spec.nodes.items():
        can_learn = opens.in_degree(name) > 0
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
        elif not node.frozen and not can_learn and node.checkpoint is None and name not in broken:
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
    """A node that neither teaches nor learns from another node trains alone: a warning.
    (Isolated in the graph of the models joined by edges that can open, labels left out.)"""
    if len(g.spec.nodes) < 2:
        return []
    alone = set(nx.isolates(g.report.opens().subgraph(g.spec.node_names))) - g.broken()
    return [
        SpecIssue(
            ("nodes", name),
            f"'{name}' neither teaches nor learns from another node: it trains alone",
            severity="warning",
            hint="add an edge to or from it",
        )
        for name in g.spec.node_names
        if name in alone
    ]


def check_reaches_knowledge(g: Linked) -> list[SpecIssue]:
    """A node that trains learns, at the end of every path into it, from the labels or a
    frozen teacher's weights; a node reached by neither (models teaching each other in a
    ring without labels) only imitates networks that never learn anything: a warning."""
    opens = g.report.opens()
    sources = {LABELS} | g.frozen
    known = set(sources)
    for source in sources:
        known |= nx.descendants(opens, source)
    lost = set(g.spec.node_names) - known - g.broken()
    return [
        SpecIssue(
            ("nodes", name),
            f"'{name}' trains, but neither the labels nor a frozen teacher reach it through "
            "edges that open: it only learns from models that learn nothing",
            severity="warning",
            hint=f"add a labels edge into '{name}' or into a node that teaches it",
        )
        for name in g.spec.node_names
        if name in lost
    ]


CHECKS: list[Callable[[Linked], list[SpecIssue]]] = [
    check_node_names,
    check_edge_ends,
    check_losses_fit_edges,
    check_self_supervised,
    check_frozen,
    check_isolated,
    check_reaches_knowledge,
    check_checkpoints,
    check_class_counts,
    check_training_size,
    check_batch_needs,
    check_data_files,
    check_placement,
    check_schedules,
]
