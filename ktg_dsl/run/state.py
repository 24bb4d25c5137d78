"""A run's own record: the resolved spec it runs (and its digest, which ties ``last.pt`` to
it), ``run.json`` (where and how it ran), and ``last.pt`` (everything needed to continue)."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ..atomic import write_text_atomic
from ..bounded import MIB, ReadRefused, read_text_capped
from ..engine.program import Program
from ..engine.protocol import TrainingEngine
from ..errors import KtgRuntimeError
from ..spec.components import resolve_refs
from ..spec.schema import Spec
from . import manifest
from .env import device_name
from .epochs import Rows
from .rundir import RunDir
from .threads import thread_record


def resolved_spec_text(spec: Spec, *, without: tuple[str, ...] = ()) -> str:
    """The spec with every default written out, paths absolute: ``ktg train`` on it runs the
    same thing from anywhere. ``without``: ``train`` keys left out."""
    data = resolve_refs(spec).to_data()
    for key in without:
        data["train"].pop(key, None)
    data["data"]["root"] = str(Path(data["data"]["root"]).absolute())
    for node in data["nodes"].values():
        if node.get("checkpoint"):
            node["checkpoint"] = str(Path(node["checkpoint"]).absolute())
    head = (
        "# Written by ktg train: the spec of this run with every default filled in.\n"
        "# `ktg train THIS_FILE` repeats the run; `ktg train --resume RUN_DIR` continues it.\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def spec_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def training_digest(spec: Spec) -> str:
    """The digest that ties ``last.pt`` to its run: the resolved spec without
    ``train.distributed`` and ``train.threads``, which say how the run is spread over
    processes and cores, not what it trains (a run may resume on another mesh)."""
    from ..spec.schema import DistributedConfig

    train = spec.train.model_copy(update={"distributed": DistributedConfig()})
    text = resolved_spec_text(spec.model_copy(update={"train": train}), without=("threads",))
    return spec_digest(text)


def run_info(spec: Spec, program: Program, data: str) -> dict[str, Any]:
    """Where and how this run ran: what the resolved spec's 'auto' values became."""
    return {
        "spec": spec.name,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "device": str(program.device),
        "device_name": device_name(program.device),
        "precision": program.precision,
        "channels_last": program.channels_last,
        **thread_record(),
        "data": data,
        "steps_per_epoch": program.steps_per_epoch,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


@dataclass
class Position:
    """Where a run stands: the next (epoch, batch), best scores, time trained so far."""

    epoch: int = 0
    step: int = 0
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> val_top1, epoch
    elapsed: float = 0.0


def save_state(run: RunDir, spec: Spec, digest: str, engine: TrainingEngine, at: Position) -> None:
    """Write last.pt: the run continues at batch ``at.step`` of epoch ``at.epoch``."""
    manifest.write(run, spec, digest, engine, at)


def restore_state(
    run: RunDir, digests: tuple[str, ...], engine: TrainingEngine, approximate: bool = False
) -> Position:
    """Load last.pt into the engine and the global generators; where to continue
    (``digests``: those a checkpoint of this run may carry)."""
    try:
        state = manifest.read(run, digests, engine, approximate)
        at = Position(int(state["epoch"]), int(state["step"]))
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
        if isinstance(exc, KtgRuntimeError):
            raise
        raise KtgRuntimeError(
            f"{run.last} is damaged or from another ktg version "
            f"({type(exc).__name__}: {exc}); nothing was changed"
        ) from None
    at.best = dict(state.get("best", {}))
    at.elapsed = float(state.get("elapsed", 0.0))
    return at


@dataclass
class RunResult:
    run_dir: Path
    epochs_done: int
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> val_top1, epoch
    last: Rows = field(default_factory=dict)  # node -> the last epoch's row
    interrupted: bool = False
    wall_time: float = 0.0


def open_record(
    run: RunDir,
    spec: Spec,
    program: Program,
    data: str,
    engine: TrainingEngine,
    resume: bool,
    approximate: bool = False,
) -> tuple[str, Position]:
    """A new run writes its record (resolved spec, run.json; the writer process); a resumed
    one restores last.pt (every process). Returns the spec's digest and where training
    (re)starts."""
    writer = engine.coordinator.is_writer()
    if writer:
        run.prepare()
    text = resolved_spec_text(spec)
    digest = training_digest(spec)
    info = run_info(spec, program, data)
    if not resume:
        if writer:
            write_record(run, text, info)
        engine.coordinator.barrier()
        return digest, Position()
    # a checkpoint written before train.distributed left the digest carries the whole text's
    at = restore_state(run, (digest, spec_digest(text)), engine, approximate)
    if writer:
        warn_if_elsewhere(run, info)
    return digest, at


def write_record(run: RunDir, text: str, info: dict[str, Any]) -> None:
    """A new run's resolved spec and run.json."""
    write_text_atomic(run.resolved, text)
    write_text_atomic(run.info, json.dumps(info, indent=2))


def warn_if_elsewhere(run: RunDir, now: dict[str, Any]) -> None:
    """A run resumed where 'auto' resolves differently is no longer the same run."""
    try:
        before = json.loads(read_text_capped(run.info, MIB, "the run's record"))
    except (ReadRefused, ValueError, RecursionError):
        return
    if not isinstance(before, dict):
        return
    changed = [
        f"{k} {before.get(k)} -> {now[k]}"
        for k in ("device", "precision", "channels_last", "threads")
        if k in before and before[k] != now[k]  # a run.json of an older ktg lacks threads
    ]
    if changed:
        print(
            "ktg: warning: this run continues on a different setup ("
            + ", ".join(changed)
            + "); it will not match an uninterrupted run exactly",
            file=sys.stderr,
        )
