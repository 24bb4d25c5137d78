"""The graph checks of ``nodes.<name>.checkpoint`` (and the keys that say how to read it):
the file is there, a regular file, before any data is loaded. Whether its weights fit the
model is ``ktg validate --deep``'s (``probe.py``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path as FsPath
from typing import TYPE_CHECKING

from ..errors import SpecIssue
from ..spec.schema import NodeConfig

if TYPE_CHECKING:
    from .checks import Linked


def check_checkpoints(g: Linked) -> list[SpecIssue]:
    """Every ``checkpoint:`` names a file that is there now, not after the data is loaded.
    A relative path is read from the working directory, as training reads it."""
    issues = []
    for name, node in g.spec.nodes.items():
        if node.checkpoint is None:
            issues.extend(_unused_checkpoint_keys(name, node))
            continue
        path = FsPath(node.checkpoint)
        if not node.checkpoint.strip():  # FsPath('') is '.', a folder: say what was written
            issues.append(
                SpecIssue(
                    ("nodes", name, "checkpoint"),
                    f"checkpoint of node '{name}' is empty",
                    hint="name the .pt file, e.g. a run's best/<node>.pt, or remove the key",
                )
            )
            continue
        try:
            if path.is_file():
                continue
            folder, there = path.is_dir(), path.exists()
        except (OSError, ValueError) as exc:  # e.g. a name too long for the file system
            issues.append(
                SpecIssue(("nodes", name, "checkpoint"), f"cannot read checkpoint {path}: {exc}")
            )
            continue
        if folder:
            message = f"checkpoint of node '{name}' is a folder, not a checkpoint file: {path}"
            hint = "name the .pt file, e.g. a run's best/<node>.pt"
        elif there:  # a FIFO, socket or device: reading it could block or never end
            message = f"checkpoint of node '{name}' is not a regular file: {path}"
            hint = "name the .pt file itself, e.g. a run's best/<node>.pt"
        else:
            message = f"checkpoint of node '{name}' does not exist: {path}"
            hint = _train_first(g, name, path) if name in g.frozen else "fix the path"
        if not path.is_absolute():
            hint += f"; a relative path is read from the working directory, {os.getcwd()}"
        issues.append(SpecIssue(("nodes", name, "checkpoint"), message, hint=hint))
    return issues


def _unused_checkpoint_keys(name: str, node: NodeConfig) -> list[SpecIssue]:
    """checkpoint_key, _prefix, _skip and _fit say how to read a checkpoint; without one they
    do nothing, which the user did not mean."""
    return [
        SpecIssue(
            ("nodes", name, key),
            f"'{key}' does nothing: node '{name}' has no 'checkpoint'",
            severity="warning",
            hint="add the checkpoint it applies to, or remove the key",
        )
        for key in ("checkpoint_key", "checkpoint_prefix", "checkpoint_skip", "checkpoint_fit")
        if getattr(node, key) not in (None, "strict")
    ]


def _train_first(g: Linked, name: str, path: FsPath) -> str:
    """How to get a missing teacher: the spec beside this one whose name the path holds
    (``runs/<name>/...``), if there is one, else training a teacher in general."""
    source = g.spec.source
    folder = FsPath(source.file).parent if source and source.file else FsPath()
    for part in path.parts:
        for ext in (".yaml", ".yml", ".json"):
            spec = folder / f"{part}{ext}"
            with contextlib.suppress(OSError, ValueError):
                if spec.is_file():
                    return f"train the teacher first: `ktg train {spec}` writes it; or fix the path"
    return (
        f"train the teacher first: `ktg train` on a spec with '{name}' writes its weights to "
        f"best/{name}.pt in the run directory; or fix the path"
    )
