"""The graph checks of the data: every node's class count against the dataset's and the two
ends of a logits edge, and what a dataset's registration knows before anything is loaded: the
size of its training part (``train_size``) and whether its files are on this machine
(``files``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import SpecIssue
from ..registry import DATASETS, UnknownComponentError
from ..spec.components import resolved_args
from .report import loss_target

if TYPE_CHECKING:
    from ..spec.schema import Spec
    from .checks import Linked


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
        if e.is_labels or e.closed or e.on_features or loss_target(e.loss_ref) != "logits":
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


def _hook_args(spec: Spec, hook: Callable[..., Any] | None) -> dict[str, Any] | None:
    """The dataset's checked arguments for one of its registration's hooks; None without the
    hook, or when the arguments do not check (the component checks report that)."""
    if hook is None:
        return None
    try:
        return resolved_args(spec.data.dataset)
    except (UnknownComponentError, ValidationError):
        return None


def _hook_issue(exc: ValueError) -> SpecIssue:
    """A hook's ``ValueError(argument, message, hint)`` (or a plugin's plain message) as an
    issue at the dataset or its argument."""
    arg, message, hint = exc.args if len(exc.args) == 3 else (None, str(exc), None)
    where = ("data", "dataset", arg) if isinstance(arg, str) else ("data", "dataset")
    return SpecIssue(where, message, hint=hint)


def _meta(spec: Spec) -> Any:
    try:
        return DATASETS.get(spec.data.dataset.type).meta
    except UnknownComponentError:
        return None


def training_size(spec: Spec) -> int | None:
    """The training part's size as the dataset's registration knows it before loading (its
    ``train_size`` hook, on the checked arguments); None where it cannot tell, or where the
    arguments are wrong (``check_training_size`` says what is wrong with them)."""
    meta = _meta(spec)
    size_of = meta.train_size if meta else None
    if (args := _hook_args(spec, size_of)) is None or size_of is None:
        return None
    try:
        size: int | None = size_of(args, spec.data.split)
        return size
    except ValueError:
        return None


def check_training_size(g: Linked) -> list[SpecIssue]:
    """What a dataset's registration knows of its training part before loading it (its
    ``train_size`` hook): what its arguments allow with this split, and room for one batch
    when the last incomplete one is dropped."""
    data, meta = g.spec.data, _meta(g.spec)
    size_of = meta.train_size if meta else None
    if (args := _hook_args(g.spec, size_of)) is None or size_of is None:
        return []
    try:
        size = size_of(args, data.split)
    except ValueError as exc:
        return [_hook_issue(exc)]
    if size is None or not data.drop_last or size >= data.batch_size:
        return []
    return [
        SpecIssue(
            ("data", "batch_size"),
            f"batch_size is {data.batch_size}, more than the {size} training images: with "
            "drop_last (the default) every batch would be dropped",
            hint="set data.batch_size lower, or data.drop_last: false",
        )
    ]


def check_batch_needs(g: Linked) -> list[SpecIssue]:
    """A loss that compares the samples of a batch with each other (``EdgeLoss.min_batch``:
    NT-Xent's negatives, rkd's distances) against the smallest training batch: a batch_size
    below it, or a last batch below it with ``drop_last: false``. Training checks it again
    with the replicas' shares and the models' BatchNorms (run/batch_need.py)."""
    needs = [
        (e.loss.min_batch, e)
        for e in g.edges
        if e.loss is not None and not e.closed and e.receiver not in g.frozen
    ]
    need, e = max(needs, key=lambda n: n[0], default=(1, None))
    if e is None or need < 2:
        return []
    data = g.spec.data
    edge = f"the self edge of '{e.receiver}'" if e.is_labels else f"edge {e.sender_end} -> "
    edge += "" if e.is_labels else e.receiver_end
    why = f"the {e.loss_ref.type} loss of {edge} compares samples (those of a batch with "
    why += f"each other): it needs at least {need} in every batch"
    if data.batch_size < need:
        return [
            SpecIssue(
                ("data", "batch_size"),
                f"batch_size is {data.batch_size}, but {why}",
                hint=f"set data.batch_size to {need} or more",
            )
        ]
    size = None if data.drop_last else training_size(g.spec)
    last = size % data.batch_size if size else 0
    if not 0 < last < need:
        return []
    return [
        SpecIssue(
            ("data", "drop_last"),
            f"the last training batch holds {last} sample(s) ({size:,} in batches of "
            f"{data.batch_size}), but {why}",
            hint="set data.drop_last: true, or a batch_size that leaves a larger last batch",
        )
    ]


def check_data_files(g: Linked) -> list[SpecIssue]:
    """A dataset whose registration can tell (its ``files`` hook) that its files are neither
    on this machine nor to be downloaded: an error that says how to get them."""
    data, meta = g.spec.data, _meta(g.spec)
    files = meta.files if meta else None
    if (args := _hook_args(g.spec, files)) is None or files is None:
        return []
    try:
        files(args, data.root, data.download, data.split)
    except ValueError as exc:
        return [_hook_issue(exc)]
    return []
