"""The graph check of ``train.distributed.placement`` (one process ignores the placement, so
what does not fit it is a warning; ``run/distributed.py`` refuses it on several processes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Path, SpecIssue, choices_hint

if TYPE_CHECKING:
    from .checks import Linked


def check_placement(g: Linked) -> list[SpecIssue]:
    """``train.distributed.placement`` names trained nodes. One process ignores it, so what
    does not fit is a warning here; a run on several processes refuses it (exit 2)."""
    placement = g.spec.train.distributed.placement or {}
    issues = []
    for name in placement:
        where: Path = ("train", "distributed", "placement", name)
        if name not in g.spec.nodes:
            issues.append(
                SpecIssue(
                    where,
                    f"'{name}' is not a node: a run on several processes refuses this placement",
                    hint=choices_hint(name, g.spec.node_names),
                    severity="warning",
                )
            )
        elif name in g.frozen:
            issues.append(
                SpecIssue(
                    where,
                    f"'{name}' is a frozen teacher: a run on several processes refuses this "
                    "placement",
                    hint="ktg places teachers (where they are read); remove it from the placement",
                    severity="warning",
                )
            )
    return issues
