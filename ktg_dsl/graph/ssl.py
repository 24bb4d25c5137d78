"""The checks of what cannot mix in a self-supervised graph (a ``self_supervised`` section):
no labels and no class logits there, no views loss outside one, and a kNN memory bank that
holds ``k`` samples. docs/self-supervised.md says why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import SpecIssue
from .data import training_size
from .report import GraphEdge, loss_target, loss_views_of

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
    return issues + _knn_fits(g) + _unused_options(g)


def _written(section: Any, key: str) -> bool:
    """Whether ``key`` was written with a value of its own: a run's spec.resolved.yaml writes
    every default, and they are no one's choice to warn about."""
    default = type(section).model_fields[key].default
    return key in section.model_fields_set and getattr(section, key) != default


def _unused_options(g: Linked) -> list[SpecIssue]:
    """Options written that change nothing: a temperature for an unweighted kNN vote, and a
    colour jitter's saturation or hue on one-channel images (warnings)."""
    ssl = g.spec.self_supervised
    if ssl is None:
        return []
    issues = []
    if not ssl.knn.weighted and _written(ssl.knn, "temperature"):
        issues.append(
            SpecIssue(
                ("self_supervised", "knn", "temperature"),
                "the temperature weighs the votes of a weighted kNN, and this one is "
                "unweighted (one vote per neighbour): it changes nothing",
                severity="warning",
                hint="add weighted: true, or remove the temperature",
            )
        )
    shape = g.report.data_info.input_shape if g.report.data_info else None
    for i, step in enumerate(ssl.augment):
        if shape is None or shape[0] != 1 or step.type != "color_jitter":
            continue
        for key in [k for k in ("hue", "saturation") if _written(step, k)]:
            issues.append(
                SpecIssue(
                    ("self_supervised", "augment", i, key),
                    f"the images have one channel: a colour jitter's {key} leaves them as they are",
                    severity="warning",
                    hint=f"remove {key}",
                )
            )
    return issues


_COMPARES = {
    "labels": "needs labels",
    "logits": "compares class logits",
    "features": "compares two taps' features",
    "outputs": "compares two models' outputs",
}


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
    if e.is_labels:
        return _self_edge(e, target, name)
    if target in ("labels", "logits") or (target == "outputs" and not e.on_features):
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
    if target == "views" and loss_views_of(e.loss_ref) == "self":
        return [
            SpecIssue(
                e.path,
                f"edge {e.sender_end} -> {e.receiver_end} uses the '{name}' loss, which "
                f"contrasts the receiver's own two views: '{e.sender}' would be ignored and "
                f"the edge would only repeat the self edge of '{e.receiver}'",
                hint=CROSS_HINT,
            )
        ]
    return []


def _self_edge(e: GraphEdge, target: str | None, name: str) -> list[SpecIssue]:
    """The self edge contrasts the node's own two views: a views loss made for it."""
    if target in _COMPARES:
        return [
            SpecIssue(
                e.path,
                f"the self edge into '{e.receiver}' uses the '{name}' loss, which "
                f"{_COMPARES[target]}; in a self-supervised graph the self edge compares the "
                "node's own two augmented views, without labels",
                hint=VIEWS_HINT,
            )
        ]
    if target == "views" and loss_views_of(e.loss_ref) == "peers":
        return [
            SpecIssue(
                e.path,
                f"the self edge into '{e.receiver}' uses the '{name}' loss, which compares a "
                "node's views with another node's: on the self edge it would compare "
                f"'{e.receiver}' with itself, a loss that teaches nothing",
                hint=VIEWS_HINT,
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
    ssl = g.spec.self_supervised
    size = None if ssl is None else training_size(g.spec)  # None: unknown, or a data issue
    if ssl is None or size is None or ssl.knn.k <= size:
        return []
    return [
        SpecIssue(
            ("self_supervised", "knn", "k"),
            f"k is {ssl.knn.k}, more than the {size} training images of the memory bank",
            hint=f"set self_supervised.knn.k to at most {size}",
        )
    ]
