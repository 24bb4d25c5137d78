"""``last.pt`` as a manifest: each node's state (model, adapters, optimizer, scheduler, scaler)
in its own file under ``state/``, written by the process that owns the node, then the manifest
(epoch, step, metric sums, best scores, every process's RNG state, the mesh), written last and
atomically by the writer. Node files carry the position they belong to in their name, so a crash
between the two leaves the previous manifest and the files it names intact; older files go once
the new manifest is in place. One process and many write the same layout, so a run started on
two processes resumes on one (or three) at node granularity.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..engine.protocol import TrainingEngine
from ..errors import KtgRuntimeError
from ..spec.schema import Spec
from . import checkpoint as ckpt
from .manifest_fields import check_fields
from .rundir import RunDir

MANIFEST_VERSION = 2
NODE_STATE = "ktg-node-state"


def _mesh(engine: TrainingEngine) -> dict[str, Any]:
    mesh = getattr(engine, "mesh", None)
    if mesh is None:
        return {"world": 1, "groups": 1, "replicas": 1}
    return {"world": mesh.world, "groups": mesh.groups, "replicas": mesh.replicas}


def write(run: RunDir, spec: Spec, digest: str, engine: TrainingEngine, at: Any) -> None:
    """Write every node's state file (its owner) and the manifest (the writer)."""
    coord = engine.coordinator
    tag = f"{at.epoch:06d}-{at.step:06d}"
    index = {name: node.index for name, node in engine.program.nodes.items()}
    for name, state in engine.state_dict().items():
        if coord.owns(index[name]) and not engine.program.nodes[name].frozen:
            run.state_dir.mkdir(exist_ok=True)
            ckpt.save({"format": NODE_STATE, **state}, run.state_file(name, tag))
    metrics = engine.metrics_state()
    rngs = coord.gather(ckpt.rng_state())
    coord.barrier()  # every node file is in place before the manifest names it
    if coord.is_writer():
        manifest = {
            "format": ckpt.RUN_FORMAT,
            "version": MANIFEST_VERSION,
            "spec_name": spec.name,
            "spec_digest": digest,
            "epoch": at.epoch,
            "step": at.step,
            "nodes": {
                name: str(run.state_file(name, tag).relative_to(run.path))
                for name, node in engine.program.nodes.items()
                if not node.frozen
            },
            "metrics": metrics,
            "best": at.best,
            "rng": rngs,
            "elapsed": at.elapsed,
            "mesh": _mesh(engine),
        }
        ckpt.save(manifest, run.last)
        _prune(run, set(manifest["nodes"].values()))
    coord.barrier()


def _prune(run: RunDir, keep: set[str]) -> None:
    """Node files no manifest names any more (those of earlier positions), and temporary
    files a killed writer left (every writer is done: the ranks met at a barrier)."""
    for path in [*run.state_dir.glob("*.pt"), *run.state_dir.glob(".*.tmp")]:
        if str(path.relative_to(run.path)) not in keep:
            with contextlib.suppress(OSError):
                path.unlink()


def node_states(path: Path, manifest: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The states of ``names`` that a run checkpoint holds (this layout, or version 1's
    inline ``engine``)."""
    if "nodes" not in manifest:
        engine: dict[str, Any] = manifest["engine"]
        return {n: engine[n] for n in names if n in engine}
    out = {}
    for name in names:
        relative = manifest["nodes"].get(name)
        if relative is not None:
            out[name] = ckpt.load(ckpt.beside(path, relative), f"state of node '{name}'")
    return out


def read(
    run: RunDir, digests: tuple[str, ...], engine: TrainingEngine, approximate: bool = False
) -> dict[str, Any]:
    """Load the manifest and this process's nodes into the engine and the generators; the
    manifest (for its position and best scores)."""
    path = run.last
    manifest = ckpt.load(path, "run checkpoint", limit=ckpt.MANIFEST_LIMIT)
    if manifest.get("format") != ckpt.RUN_FORMAT:
        raise KtgRuntimeError(
            f"{path} is not a ktg run checkpoint (format {manifest.get('format')!r}); "
            "nothing was changed"
        )
    if manifest.get("spec_digest") not in digests:
        raise KtgRuntimeError(
            f"{path} belongs to another run (its spec differs from {run.resolved}); "
            "nothing was changed"
        )
    program = engine.program
    check_fields(path, manifest, program.epochs, program.steps_per_epoch)
    _check_mesh(path, manifest.get("mesh", {}), _mesh(engine), approximate)
    local = [n for n in engine.state_dict() if not engine.program.nodes[n].frozen]
    engine.load_state_dict(node_states(path, manifest, local))
    engine.load_metrics_state(manifest["metrics"])
    rngs = manifest["rng"]
    if isinstance(rngs, list):  # every process's; a process without its own takes rank 0's
        rank = engine.coordinator.rank
        rngs = rngs[rank] if len(rngs) == engine.coordinator.world else rngs[0]
    ckpt.set_rng_state(rngs)
    return manifest


def _check_mesh(path: Path, before: dict[str, Any], now: dict[str, Any], approx: bool) -> None:
    was, is_ = before.get("replicas", 1), now["replicas"]
    if was != is_ and not approx:
        raise KtgRuntimeError(
            f"{path} was written with data_parallel {was}, and this run has {is_}: each "
            "replica's share of a batch would change, so it cannot continue exactly. Resume "
            f"with data_parallel {was}, or add --approximate to continue anyway"
        )
