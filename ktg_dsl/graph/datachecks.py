"""The checks of a spec's dataset that its registration makes possible before anything is
loaded: the size of its training part (``train_size`` hook) and whether its files are on this
machine (``files`` hook)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import SpecIssue
from ..registry import DATASETS, UnknownComponentError

if TYPE_CHECKING:
    from .checks import Linked


def _dataset_hook(g: Linked, key: str) -> tuple[Callable[..., Any], dict[str, Any]] | None:
    """The dataset registration's ``key`` hook and its checked arguments, or None (no such
    hook, or the dataset's own checks fail: those report it)."""
    data = g.spec.data
    try:
        comp = DATASETS.get(data.dataset.type)
        hook = comp.meta.get(key)
        return (hook, comp.check(data.dataset.args).model_dump()) if hook else None
    except (UnknownComponentError, ValidationError):
        return None


def _hook_issue(exc: ValueError) -> SpecIssue:
    """A hook's ``ValueError(argument or None, message, hint)`` (or a plugin's plain
    message) as an issue at the dataset or its argument."""
    arg, message, hint = exc.args if len(exc.args) == 3 else (None, str(exc), None)
    where = ("data", "dataset", arg) if isinstance(arg, str) else ("data", "dataset")
    return SpecIssue(where, message, hint=hint)


def check_training_size(g: Linked) -> list[SpecIssue]:
    """What a dataset's registration knows of its training part before loading it (its
    ``train_size`` hook): what its arguments allow with this split, and room for one batch
    when the last incomplete one is dropped."""
    data = g.spec.data
    if (found := _dataset_hook(g, "train_size")) is None:
        return []
    size_of, args = found
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


def check_data_files(g: Linked) -> list[SpecIssue]:
    """A dataset whose registration can tell (its ``files`` hook) that its files are neither
    on this machine nor to be downloaded: an error that says how to get them."""
    data = g.spec.data
    if (found := _dataset_hook(g, "files")) is None:
        return []
    files, args = found
    try:
        files(args, data.root, data.download, data.split)
    except ValueError as exc:
        return [_hook_issue(exc)]
    return []
