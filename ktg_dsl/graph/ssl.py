"""The checks of what cannot mix in a self-supervised graph (a ``self_supervised`` section):
no labels and no class logits there, no views loss outside one, and a kNN memory bank that
holds ``k`` samples. docs/self-supervised.md says why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SpecIssue
from .data import _hook_args, _meta
from .report import GraphEdge, loss_target

if TYPE_CHECKING:
    from .checks import Linked

VIEWS_HINT = "use nt_xent on the self edge (from: labels)"
CROSS_HINT = "use similarity_kl or view_mse between nodes, or a feature loss between taps"


def check_self_supervised(g: Linked) -> list[SpecIssue]:
    """Every edge's loss against the graph's kind; the objective's metric too."""
    ssl = g.spec.self_supervised is not None
    issues = [i for e in g.edges for i in (_ssl_edge(e) if ssl else _supervised_edge(e))]
    search = g.spec.search
    metric = search.objective.metric if search else None
    if not ssl and metric == "knn_top1":
        issues.append(
            SpecIssue(
                ("search", "objective", "metric"),
                "knn_top1 scores self-supervised graphs, and this one has labels edges",
                hint="use val_top1, or add a self_supervised section",
            )
        )
    return issues + _knn_fits(g)


def _ssl_edge(e: GraphEdge) -> list[SpecIssue]:
    target, name = loss_target(e.loss_ref), e.loss_ref.type
    if e.gate is not None and e.gate.per_sample:
        return [
            SpecIssue(
                e.path,
                f"gate '{e.gate_ref.type}' weighs each sample by the sender's class logits; a "
                "self-supervised graph has none",
                hint="use a gate over time: through, cutoff, positive_linear, ...",
            )
        ]
    if e.is_labels and target not in ("views", None):  # None: unknown, reported elsewhere
        return [
            SpecIssue(
                e.path,
                f"the self edge into '{e.receiver}' uses the '{name}' loss, which needs "
                "labels or logits; a self-supervised graph trains without labels",
                hint=VIEWS_HINT,
            )
        ]
    if not e.is_labels and target in ("labels", "logits", "outputs"):
        what = "labels" if target == "labels" else "class logits"
        return [
            SpecIssue(
                e.path,
                f"edge {e.sender_end} -> {e.receiver_end} uses the '{name}' loss, which "
                f"compares {what}; a self-supervised node outputs projections",
                hint=CROSS_HINT,
            )
        ]
    if target == "views" and e.on_features:
        return [
            SpecIssue(
                e.path,
                f"edge {e.sender_end} -> {e.receiver_end}: '{name}' compares two nodes' "
                "projections, but its ends name taps",
                hint=f"write the edge between nodes (to: {e.receiver}, from: {e.sender})",
            )
        ]
    return []


def _supervised_edge(e: GraphEdge) -> list[SpecIssue]:
    if loss_target(e.loss_ref) != "views":
        return []
    return [
        SpecIssue(
            e.path,
            f"edge {e.sender_end} -> {e.receiver_end} uses the '{e.loss_ref.type}' loss, "
            "which compares two augmented views; this graph is supervised",
            hint="add a self_supervised section (docs/self-supervised.md), or use ce / kl",
        )
    ]


def _knn_fits(g: Linked) -> list[SpecIssue]:
    ssl, meta = g.spec.self_supervised, _meta(g)
    size_of = meta.train_size if meta else None
    if ssl is None or size_of is None or (args := _hook_args(g, size_of)) is None:
        return []
    try:
        size = size_of(args, g.spec.data.split)
    except ValueError:
        return []  # the data checks say what is wrong with the arguments
    if size is None or ssl.knn.k <= size:
        return []
    return [
        SpecIssue(
            ("self_supervised", "knn", "k"),
            f"k is {ssl.knn.k}, more than the {size} training images of the memory bank",
            hint=f"set self_supervised.knn.k to at most {size}",
        )
    ]
