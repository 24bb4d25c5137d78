"""``ktg train`` as a library call: load the data, then claim a run directory (so that data
that cannot be loaded leaves nothing behind), run a recipe in it, remove what a run that never
reached a checkpoint wrote, move ``latest`` once a run has a checkpoint, and format the final
per-node table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..components.data.bundle import DataBundle
from ..graph import GraphReport
from ..spec.schema import Spec
from .data import load_bundle
from .distributed import Cluster
from .env import check_devices
from .recipe import EpochHook, Recipe
from .rundir import RunDir, check_new, claim_new, link_latest
from .state import RunResult
from .threads import apply_threads

Say = Callable[[str], None]


def train_new(
    spec: Spec,
    graph: GraphReport | None,
    run_dir: str | None = None,
    *,
    progress: bool = True,
    say: Say = lambda _: None,
    hooks_for: Callable[[RunDir], Sequence[EpochHook]] | None = None,
) -> tuple[RunDir, RunResult | None]:
    """Train ``spec`` in a new run directory (``run_dir``, else one under ``train.out_dir``).
    The data is loaded before the directory is claimed: a dataset that is missing or broken
    stops the run with nothing created. ``hooks_for``: epoch hooks made for the directory once
    it is claimed (e.g. a page kept up to date in it). Returns the run directory and the
    result."""
    check_new(run_dir)  # a used --run-dir is refused before the data is loaded
    check_devices(spec)
    apply_threads(spec.train.threads)  # loading and augmenting the data computes too
    bundle = load_bundle(spec)
    run = claim_new(run_dir, spec.train.out_dir, spec.name)
    hooks = hooks_for(run) if hooks_for is not None else ()
    return run, train_in(spec, graph, run, progress=progress, say=say, bundle=bundle, hooks=hooks)


def train_in(
    spec: Spec,
    graph: GraphReport | None,
    run: RunDir,
    *,
    resume: bool = False,
    progress: bool = True,
    say: Say = lambda _: None,
    bundle: DataBundle | None = None,
    cluster: Cluster | None = None,
    approximate: bool = False,
    hooks: Sequence[EpochHook] = (),
) -> RunResult | None:
    """Train (or resume) ``spec`` in the claimed directory ``run``; None when a resumed run
    was already complete. ``bundle``: the data, if loaded already; ``cluster``: this rank's
    place on a mesh of processes; ``hooks``: called after each epoch (the writing rank only).
    The claim is released at the end."""
    linked = False

    def latest(epoch: int, rows: Any) -> None:
        nonlocal linked
        if not linked and run.last.exists():
            link_latest(run)
            linked = True

    recipe = Recipe(
        spec,
        run,
        graph=graph,
        resume=resume,
        progress=progress,
        hooks=[latest, *hooks] if cluster is None or cluster.mesh.rank == 0 else [],
        bundle=bundle,
        cluster=cluster,
        approximate=approximate,
    )
    say(f"run {run.path}" + (" (resumed)" if resume else ""))
    try:
        recipe.setup()
        if recipe.at.epoch >= spec.train.epochs:
            say(f"{run.path} is already complete ({spec.train.epochs} epochs); nothing to do")
            return None
        program = recipe.program
        say(
            f"{recipe.bundle.description}; {_count(len(program.nodes), 'node')} on "
            f"{program.device} "
            f"({program.precision}); {recipe.threads.text()}; "
            f"{len(recipe.batches.train)} steps per epoch"
        )
        if recipe.at.epoch or recipe.at.step:
            say(f"continuing at epoch {recipe.at.epoch + 1}, batch {recipe.at.step + 1}")
        return recipe.train()
    except BaseException:
        recipe.cleanup()  # close the logs before their folder may go
        if not resume and (cluster is None or cluster.mesh.rank == 0):
            run.discard()
        raise
    finally:
        recipe.cleanup()
        run.release()


def results_table(result: RunResult, nodes: list[str], eval_name: str) -> str:
    """The final table: each node's best evaluation top-1, the first epoch reaching it, and
    its last."""
    rows = [("node", f"best {eval_name} top-1", "epoch", f"last {eval_name} top-1")]
    for name in nodes:
        b = result.best.get(name)
        last = result.last.get(name, {})
        rows.append(
            (
                name + (" (frozen)" if last.get("frozen") else ""),
                f"{b['val_top1']:.2f}%" if b else "-",
                str(b["epoch"] + 1) if b else "-",
                f"{last['val_top1']:.2f}%" if last.get("val_top1") is not None else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _count(n: int, what: str) -> str:
    """``1 node``, ``3 nodes``."""
    return f"{n} {what}{'' if n == 1 else 's'}"
