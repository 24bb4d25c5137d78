"""``ktg train``: pick the run directory, run the Trainer, print the per-node table."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .errors import KtgRuntimeError, SpecError, UsageError
from .graph import GraphReport
from .spec.schema import Spec


def claim_run_dir(spec: Spec, explicit: str | None) -> tuple[Path, bool]:
    """Create the run directory and return it, with whether it is the default kind
    (``<out_dir>/<name>/<YYYYmmdd-HHMMSS>``, a suffix when two runs start in one second).
    Creating it is what claims it, so two runs never share one."""
    if explicit:
        run = Path(explicit)
        if run.exists() and not run.is_dir():
            raise KtgRuntimeError(f"--run-dir {run} is a file, not a folder")
        if run.is_dir() and any(run.iterdir()):
            raise KtgRuntimeError(
                f"{run} already holds a run; continue it with "
                f"`ktg train --resume {run}` or choose another --run-dir"
            )
        _mkdir(run, parents=True, exist_ok=True)
        return run, False
    base = Path(spec.train.out_dir) / spec.name
    _mkdir(base, parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        run = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            run.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise KtgRuntimeError(f"cannot create {run}: {exc.strerror or exc}") from None
        return run, True
    raise KtgRuntimeError(f"cannot find a free run directory in {base}")


def _mkdir(path: Path, **kwargs: bool) -> None:
    try:
        path.mkdir(**kwargs)
    except FileExistsError:
        raise KtgRuntimeError(f"cannot create {path}: a file of that name is in the way") from None
    except OSError as exc:
        raise KtgRuntimeError(f"cannot create {path}: {exc.strerror or exc}") from None


def _link_latest(run: Path) -> None:
    """``latest`` beside the default run directories, pointing at this run. Only a link is
    ever replaced: a file or folder of that name is the user's."""
    link = run.parent / "latest"
    try:
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            return
        link.symlink_to(run.name)
    except OSError:
        pass  # a file system without links: nothing depends on it


def _discard(run: Path) -> None:
    """Remove a run directory that never reached its first checkpoint: it holds nothing to
    resume, and would otherwise block the next run of the same directory."""
    if not (run / "last.pt").exists():
        shutil.rmtree(run, ignore_errors=True)


def results_table(
    best: dict[str, dict[str, Any]],
    last: dict[str, dict[str, Any]],
    nodes: list[str],
    eval_name: str,
) -> str:
    rows = [("node", f"best {eval_name} top-1", "epoch", f"last {eval_name} top-1")]
    for name in nodes:
        b = best.get(name)
        last_top1 = last.get(name, {}).get("val_top1")
        frozen = last.get(name, {}).get("frozen")
        rows.append(
            (
                name + (" (frozen)" if frozen else ""),
                f"{b['val_top1']:.2f}%" if b else "-",
                str(b["epoch"] + 1) if b else "-",
                f"{last_top1:.2f}%" if last_top1 is not None else "-",
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


def train_command(spec: Spec | None, report: GraphReport | None, args: argparse.Namespace) -> int:
    from .engine.trainer import RESOLVED, Trainer

    if args.resume:
        if args.spec or args.set or args.run_dir:
            raise UsageError(
                "--resume continues a run with its own spec and directory; give "
                "the run directory alone (no SPEC, no --set, no --run-dir)"
            )
        run_dir = Path(args.resume)
        if not (run_dir / RESOLVED).exists() or not (run_dir / "last.pt").exists():
            raise UsageError(
                f"{run_dir} is not a run directory with a checkpoint (needs {RESOLVED} and last.pt)"
            )
        from .spec.api import load_spec

        try:
            spec = load_spec(run_dir / RESOLVED)
        except SpecError as exc:
            raise KtgRuntimeError(
                f"{run_dir / RESOLVED} is not a valid spec any more:\n"
                + "\n".join(i.format() for i in exc.errors)
            ) from None
    else:
        if spec is None:
            raise UsageError("ktg train needs a SPEC (or --resume RUN_DIR)")
        run_dir, default_place = claim_run_dir(spec, args.run_dir)
    trainer = Trainer(spec, run_dir, resume=bool(args.resume), progress=not args.no_progress)
    print(f"ktg: run {run_dir}" + (" (resumed)" if args.resume else ""), file=sys.stderr)
    try:
        trainer.setup()
        if not args.resume and default_place:
            _link_latest(run_dir)
        if trainer.start_epoch >= spec.train.epochs:
            print(
                f"ktg: {run_dir} is already complete ({spec.train.epochs} epochs); nothing to do",
                file=sys.stderr,
            )
            return 0
        bundle, program = trainer.bundle, trainer.program
        print(
            f"ktg: {bundle.description}; {len(program.nodes)} nodes on {program.device} "
            f"({program.precision}); {len(trainer.train_batches)} steps per epoch",
            file=sys.stderr,
        )
        if trainer.start_epoch or trainer.start_step:
            print(
                f"ktg: continuing at epoch {trainer.start_epoch + 1}, batch "
                f"{trainer.start_step + 1}",
                file=sys.stderr,
            )
        result = trainer.train()
    except BaseException:
        trainer.cleanup()  # close the logs before their folder may go
        if not args.resume:
            _discard(run_dir)
        raise
    finally:
        trainer.cleanup()
    if result.interrupted:
        print(
            f"ktg: stopped; saved {run_dir / 'last.pt'}. Continue with:\n"
            f"  ktg train --resume {run_dir}",
            file=sys.stderr,
        )
        return 130
    print(
        results_table(
            result.best, result.last, list(trainer.program.nodes), trainer.bundle.eval_name
        )
    )
    print(f"\n{result.epochs_done} epochs in {result.wall_time:.1f} s; run directory: {run_dir}")
    return 0
