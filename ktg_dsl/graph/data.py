"""The graph checks of the data: every node's class count against the dataset's and the two
ends of a logits edge, and what a dataset's registration knows before anything is loaded: the
size of its training part (``train_size``) and whether its files are on this machine
(``files``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..errors import SpecIssue
from ..registry import DATASETS, UnknownComponentError
from .report import loss_target

if TYPE_CHECKING:
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


def check_training_size(g: Linked) -> list[SpecIssue]:
    """What a dataset's registration knows of its training part before loading it (its
    ``train_size`` hook): what its arguments allow with this split, and room for one batch
    when the last incomplete one is dropped."""
    data = g.spec.data
    try:
        comp = DATASETS.get(data.dataset.type)
        size_of = comp.meta.train_size
        args = comp.check(data.dataset.args).model_dump() if size_of else {}
    except (UnknownComponentError, ValidationError):
        return []  # the component checks report it
    if size_of is None:
        return []
    try:
        size = size_of(args, data.split)
    except ValueError as exc:  # (argument, message, hint), or a plugin's plain message
        arg, message, hint = exc.args if len(exc.args) == 3 else (None, str(exc), None)
        where = ("data", "dataset", arg) if isinstance(arg, str) else ("data", "dataset")
        return [SpecIssue(where, message, hint=hint)]
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


def check_data_files(g: Linked) -> list[SpecIssue]:
    """A dataset whose registration can tell (its ``files`` hook) that its files are neither
    on this machine nor to be downloaded: an error that says how to get them."""
    data = g.spec.data
    try:
        comp = DATASETS.get(data.dataset.type)
        files = comp.meta.files
        args = comp.check(data.dataset.args).model_dump() if files else {}
    except (UnknownComponentError, ValidationError):
        return []  # the component checks report it
    if files is None:
        return []
    try:
        files(args, data.root, data.download, data.split)
    except ValueError as exc:  # (argument, message, hint), or a plugin's plain message
        arg, message, hint = exc.args if len(exc.args) == 3 else (None, str(exc), None)
        where = ("data", "dataset", arg) if isinstance(arg, str) else ("data", "dataset")
        return [SpecIssue(where, message, hint=hint)]
    return []
