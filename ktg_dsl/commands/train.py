"""``ktg train SPEC`` (or ``--resume RUN_DIR``): train the graph, print the per-node table."""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import KtgRuntimeError, SpecError, SpecIssue
from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    add_overrides,
    add_threads,
    checked,
    non_negative_int,
    positive_int,
    say,
)

if TYPE_CHECKING:
    from ..graph import GraphReport
    from ..run.rundir import RunDir
    from ..run.state import RunResult
    from ..spec.schema import Spec

NAME = "train"
HELP = "train the graph"
RESUME_SETS = "train.distributed."  # the --set keys a resumed run may change
LAUNCHED = "KTG_NPROC"  # set by --nproc for its workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", metavar="SPEC", help="the spec file")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last.pt")
    parser.add_argument("--run-dir", metavar="DIR", help="default: <out_dir>/<name>/<time>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--nproc",
        type=positive_int,
        default=1,
        metavar="N",
        help="train on N local processes (torch.distributed's launcher; docs/distributed.md)",
    )
    parser.add_argument(
        "--max-restarts",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="with --nproc: restart the processes up to K times after one dies (each restart "
        "resumes from the last checkpoint)",
    )
    parser.add_argument(
        "--approximate",
        action="store_true",
        help="resume a run on another data_parallel setting (not exactly the same run)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="keep RUN_DIR/report.html (ktg report's page) up to date after every epoch, and "
        "the graph's picture per epoch in TensorBoard (tb/ktg.graph)",
    )
    add_overrides(parser)
    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    from ..run.distributed import world_size

    if args.resume and (args.spec or args.run_dir):
        raise UsageError(
            "--resume continues a run with its own spec and directory; give "
            "the run directory alone (no SPEC, no --run-dir)"
        )
    moved = [s for s in args.set if not _distributed_key(s)]
    if args.resume and moved:
        raise UsageError(
            f"--resume continues a run with its own spec: --set {moved[0]} would change what "
            f"it trains. Only {RESUME_SETS}* may change on resume (how the run is spread over "
            "processes). To train a finished run further, start a new run from its weights, "
            f"with its own schedule: ktg train {args.resume}/spec.resolved.yaml --set "
            f"{moved[0]} --set nodes.<node>.checkpoint={args.resume}/best/<node>.pt (one "
            "--set per node; docs/train.md)"
        )
    if not args.resume and not args.spec:
        raise UsageError("ktg train needs a SPEC (or --resume RUN_DIR)")
    if args.approximate and not args.resume:
        raise UsageError(
            "--approximate continues a run on another data_parallel setting: it goes with "
            "--resume RUN_DIR (a new run has nothing to continue)"
        )
    if args.max_restarts and args.nproc < 2:
        raise UsageError(
            f"--max-restarts {args.max_restarts} restarts the processes of --nproc N (N >= 2); "
            "one process has none to restart (under torchrun, give torchrun --max_restarts)"
        )
    if world_size() > 1:
        return _rank(args)
    if args.nproc > 1:
        return _launch(args)
    return _one_process(args)


def _distributed_key(override: str) -> bool:
    """Whether ``--set KEY=VALUE`` sets train.distributed or a key under it."""
    key = override.split("=", 1)[0].strip()
    return key == RESUME_SETS.rstrip(".") or key.startswith(RESUME_SETS)


def _one_process(args: argparse.Namespace) -> int:
    from ..run.session import train_in, train_new

    if args.resume:
        run = _claim_resume(args.resume)
        spec, graph = _resumed_spec(run.resolved, args.set)
        result = train_in(
            spec,
            graph,
            run,
            resume=True,
            progress=not args.no_progress,
            say=say,
            approximate=args.approximate,
            hooks=_live(args, spec, graph)(run),
        )
    else:
        spec, graph = checked(args.spec, args.set)
        # the data is loaded before the run directory is claimed: missing data leaves nothing
        run, result = train_new(
            spec,
            graph,
            args.run_dir,
            progress=not args.no_progress,
            say=say,
            hooks_for=_live(args, spec, graph),
        )
    return _report(spec, run, result)


def _live(args: argparse.Namespace, spec: Spec, graph: GraphReport) -> Callable[[RunDir], list]:
    """``--report``: the epoch hook that keeps the run's page (and TensorBoard picture)."""

    def hooks(run: RunDir) -> list:
        if not args.report:
            return []
        from ..report.live import LiveReport

        return [LiveReport(spec, graph, run)]

    return hooks


def _report(spec: Spec, run: RunDir, result: RunResult | None, again: str | None = None) -> int:
    """The final table, or how to continue an interrupted run (``again``: the command)."""
    from ..run.data import eval_label
    from ..run.session import results_table

    if result is None:
        return EXIT_OK
    if result.interrupted:
        again = again or f"ktg train --resume {run.path}"
        say(f"stopped; saved {run.last}. Continue with:\n  {again}")
        return EXIT_INTERRUPTED
    print(results_table(result, list(spec.nodes), eval_label(spec, spec.data.split)))
    epochs = f"{result.epochs_done} epoch{'' if result.epochs_done == 1 else 's'}"
    print(f"\n{epochs} in {result.wall_time:.1f} s; run directory: {run.path}")
    return EXIT_OK


def _rank(args: argparse.Namespace) -> int:
    """One rank of a torchrun world (started by torchrun, or by --nproc below)."""
    from ..run.distributed import world_size
    from ..run.ranks import lost_peer, train_ranks

    if args.resume:
        _check_resumable(args.resume)
        spec, graph = _resumed_spec(Path(args.resume) / "spec.resolved.yaml", args.set)
    else:
        spec, graph = checked(args.spec, args.set)
    try:
        run, result, writer = train_ranks(
            spec,
            graph,
            run_dir=args.run_dir,
            resume=args.resume,
            approximate=args.approximate,
            progress=not args.no_progress,
            say=say,
            hooks_for=_live(args, spec, graph),
        )
    except RuntimeError as exc:
        if not lost_peer(exc):
            raise
        raise KtgRuntimeError(
            f"rank {os.environ.get('RANK', '?')} lost the other ranks in a collective (one "
            f"died, was killed or timed out; its own message says why): "
            f"{str(exc).splitlines()[0][:300]}"
        ) from None
    if not writer:
        return EXIT_INTERRUPTED if result is not None and result.interrupted else EXIT_OK
    world = world_size()
    if os.environ.get(LAUNCHED) == "1":  # by --nproc below: the same command continues it
        again = f"ktg train --resume {run.path} --nproc {world}{_distributed_args(args)}"
    else:
        again = f"torchrun <the same options> -m ktg_dsl train --resume {run.path}"
        again += _distributed_args(args)
    return _report(spec, run, result, again)


def _distributed_args(args: argparse.Namespace) -> str:
    """The options a resumed run needs again to run on the same mesh."""
    sets = [s for s in args.set if _distributed_key(s)]
    return "".join(f" --set {shlex.quote(s)}" for s in sets) + " --approximate" * args.approximate


def _launch(args: argparse.Namespace) -> int:
    """``--nproc N``: check the spec here, then start N ranks under the elastic agent."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from ..run.distributed import backend_and_device, plan_mesh
    from ..run.ranks import launch, new_run_id, stop_grace
    from ..run.rundir import check_new

    # every value joined to its option, the spec after `--`: a name starting with a dash
    # reaches the ranks as the name it is
    argv = ["train", *(f"--set={s}" for s in args.set), *(f"--plugin={p}" for p in args.plugin)]
    argv += ["--no-progress"] * args.no_progress + ["--approximate"] * args.approximate
    argv += ["--report"] * args.report  # rank 0 keeps the page, as it writes the logs
    if args.resume:
        _check_resumable(args.resume)
        spec, graph = _resumed_spec(Path(args.resume) / "spec.resolved.yaml", args.set)
        argv += [f"--resume={args.resume}"]
    else:
        spec, graph = checked(args.spec, args.set)
        check_new(args.run_dir)  # a folder that holds something is refused before any rank starts
        argv += [f"--run-dir={args.run_dir}"] * bool(args.run_dir) + ["--", args.spec]
    plan_mesh(spec, graph, 0, args.nproc)  # what cannot work is said before anything starts
    backend_and_device(spec, args.nproc - 1)  # the last rank's GPU exists (nccl)
    stop_grace()  # a TORCH_ELASTIC_SHUTDOWN_TIMEOUT that is not whole seconds is said here too
    say(f"starting {args.nproc} processes (torch.distributed elastic agent)")
    run_id = new_run_id()
    run_path = Path(
        args.resume or args.run_dir or Path(spec.train.out_dir) / spec.name / f"torchrun-{run_id}"
    )
    try:
        launch(args.nproc, argv, args.plugin, args.max_restarts, run_id)
    except ChildFailedError as exc:
        codes = sorted({f.exitcode for f in exc.failures.values()})
        ranks = ", ".join(map(str, sorted(exc.failures)))
        how = ", ".join(_exit_text(c) for c in codes)
        say(f"rank {ranks} stopped ({how}); see the first rank's message above")
        if EXIT_INTERRUPTED not in codes:  # rank 0 said how to continue an interrupted run
            _resume_hint(run_path, f"--nproc {args.nproc}{_distributed_args(args)}")
        return EXIT_INTERRUPTED if EXIT_INTERRUPTED in codes else max(1, min(codes[-1], 2))
    except (KeyboardInterrupt, SignalException):
        if _finished(run_path, spec.train.epochs):  # the stop came as the run ended
            say(f"interrupted as the run ended: all {spec.train.epochs} epochs are done")
            return EXIT_OK
        say("interrupted; every rank was asked to stop and save")
        return EXIT_INTERRUPTED
    return EXIT_OK


def _finished(run: Path, epochs: int) -> bool:
    """Whether the run's last.pt says every epoch is done (as a one-process run that a
    Ctrl-C reached in its last batch ends: with its table, exit 0)."""
    from ..run import checkpoint as ckpt
    from ..run.rundir import LAST

    try:
        manifest = ckpt.load(run / LAST, limit=ckpt.MANIFEST_LIMIT)
    except (KtgRuntimeError, OSError):
        return False
    return manifest.get("epoch") == epochs and not manifest.get("step")


def _exit_text(code: int) -> str:
    """``exit code 1``, or ``killed by SIGKILL`` for a negative code."""
    import signal

    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _resume_hint(run: Path, options: str) -> None:
    from ..run.rundir import RunDir

    if RunDir(run).last.exists():
        last = run / "last.pt"
        say(f"the run can continue from {last}:\n  ktg train --resume {run} {options}")


def _check_resumable(path: str) -> None:
    """A folder that is not a run with a checkpoint is a wrong command line (exit 2)."""
    from ..run.rundir import LAST, RESOLVED, RunDir

    candidate = RunDir(Path(path))
    if not candidate.resolved.exists() or not candidate.last.exists():
        raise UsageError(
            f"{path} is not a run directory with a checkpoint (needs {RESOLVED} and {LAST})"
        )


def _claim_resume(path: str) -> RunDir:
    from ..run.rundir import claim_existing

    _check_resumable(path)
    return claim_existing(path)


def _resumed_spec(path: Path, overrides: list[str]) -> tuple[Spec, GraphReport]:
    from ..check import check_file

    try:
        report = check_file(path, overrides)
    except SpecError as exc:
        raise _not_valid(path, exc.errors) from None
    if not report.ok or report.spec is None or report.graph is None:
        raise _not_valid(path, report.errors)
    return report.spec, report.graph


def _not_valid(path: Path, issues: list[SpecIssue]) -> KtgRuntimeError:
    lines = "\n".join(i.format() for i in issues)
    if issues and all((i.file or "").startswith("--set") for i in issues):
        # the run's own spec is fine: the values given on the command line are not
        return KtgRuntimeError(f"the --set values for {path.parent} are not valid:\n{lines}")
    return KtgRuntimeError(f"{path} is not a valid spec any more:\n{lines}")
