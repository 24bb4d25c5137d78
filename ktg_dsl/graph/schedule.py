"""Checks of each node's learning-rate schedule against the run (torch-free): a
``warmup_cosine`` warm-up as long as the run (its cosine would never start; training refused it
only after making a run directory), and a cosine whose end, ``eta_min``, is above the
optimizer's learning rate (it would rise: a warning)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import Path, SpecIssue
from ..registry import UnknownComponentError
from ..spec.components import resolved_args
from ..spec.schema import ComponentRef, Spec

if TYPE_CHECKING:
    from .checks import Linked

COSINES = ("cosine", "warmup_cosine")


def check_schedules(g: Linked) -> list[SpecIssue]:
    """Every issue of the schedules the training nodes use, each said once at the key it comes
    from (``defaults.scheduler`` for every node that has none of its own)."""
    spec = g.spec
    issues: dict[tuple[Path, str], SpecIssue] = {}
    for name, node in spec.nodes.items():
        if name in g.frozen:
            continue  # a frozen teacher has no optimizer, nor a schedule
        where: Path = ("nodes", name) if node.scheduler else ("defaults",)
        scheduler = node.scheduler or spec.defaults.scheduler
        if scheduler.type not in COSINES:
            continue
        args = _checked(scheduler)
        if args is None:
            continue  # the component checks say what is wrong with it
        found = _warmup(spec, (*where, "scheduler"), scheduler, args)
        optimizer = node.optimizer or spec.defaults.optimizer
        found += _rising((*where, "scheduler"), scheduler, args, optimizer, _checked(optimizer))
        for issue in found:
            issues.setdefault((issue.path, issue.message), issue)
    return list(issues.values())


def _checked(ref: ComponentRef) -> dict[str, Any] | None:
    """The reference's arguments with their defaults; None when it does not check (the
    component checks say why)."""
    try:
        return resolved_args(ref)
    except (UnknownComponentError, ValidationError):
        return None


def _warmup(spec: Spec, path: Path, ref: ComponentRef, args: dict[str, Any]) -> list[SpecIssue]:
    warmup, epochs = args.get("warmup_epochs"), spec.train.epochs
    if not warmup or warmup < epochs:
        return []
    written = "warmup_epochs" in ref.args
    return [
        SpecIssue(
            (*path, "warmup_epochs") if written else path,
            f"warmup_cosine warms up for {warmup:g} epochs"
            + ("" if written else " (its default)")
            + f", but training runs {epochs}: the cosine would never start",
            hint=f"set warmup_epochs below train.epochs (e.g. {epochs / 10:g}), or 0 "
            "for no warm-up",
        )
    ]


def _rising(
    path: Path,
    ref: ComponentRef,
    args: dict[str, Any],
    optimizer: ComponentRef,
    opt_args: dict[str, Any] | None,
) -> list[SpecIssue]:
    eta_min, lr = args.get("eta_min"), (opt_args or {}).get("lr")
    if not eta_min or not isinstance(lr, int | float) or eta_min <= lr:
        return []
    return [
        SpecIssue(
            (*path, "eta_min"),
            f"{ref.type} ends at eta_min {eta_min:g}, above the {optimizer.type} optimizer's lr "
            f"{lr:g}: the learning rate would rise over the run instead of decaying",
            severity="warning",
            hint="eta_min is a learning rate, where the cosine ends: set it below lr (e.g. "
            f"{lr / 100:g}), or use min_factor for a fraction of lr"
            if ref.type == "warmup_cosine"
            else f"set it below lr (e.g. {lr / 100:g})",
        )
    ]
