"""``ktg train SPEC`` (or ``--resume RUN_DIR``): train the graph, print the per-node table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import KtgRuntimeError, SpecError, SpecIssue
from .common import EXIT_INTERRUPTED, EXIT_OK, UsageError, add_overrides, checked, say

if TYPE_CHECKING:
    from ..graph import GraphReport
    from ..run.rundir import RunDir
    from ..spec.schema import Spec

NAME = "train"
HELP = "train the graph"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", metavar="SPEC", help="the spec file")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last.pt")
    parser.add_argument("--run-dir", metavar="DIR", help="default: <out_dir>/<name>/<time>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overrides(parser)


def run(args: argparse.Namespace) -> int:
    from ..run.session import results_table, train_in, train_new

    if args.resume:
        if args.spec or args.set or args.run_dir:
            raise UsageError(
                "--resume continues a run with its own spec and directory; give "
                "the run directory alone (no SPEC, no --set, no --run-dir)"
            )
        run = _claim_resume(args.resume)
        spec, graph = _resumed_spec(run.resolved)
        result = train_in(spec, graph, run, resume=True, progress=not args.no_progress, say=say)
    else:
        if not args.spec:
            raise UsageError("ktg train needs a SPEC (or --resume RUN_DIR)")
        spec, graph = checked(args.spec, args.set)
        # the data is loaded before the run directory is claimed: missing data leaves nothing
        run, result = train_new(spec, graph, args.run_dir, progress=not args.no_progress, say=say)
    if result is None:
        return EXIT_OK
    if result.interrupted:
        say(f"stopped; saved {run.last}. Continue with:\n  ktg train --resume {run.path}")
        return EXIT_INTERRUPTED
    print(results_table(result, list(spec.nodes), spec.data.split))
    print(f"\n{result.epochs_done} epochs in {result.wall_time:.1f} s; run directory: {run.path}")
    return EXIT_OK


def _claim_resume(path: str) -> RunDir:
    from ..run.rundir import LAST, RESOLVED, RunDir, claim_existing

    candidate = RunDir(Path(path))
    if not candidate.resolved.exists() or not candidate.last.exists():
        raise UsageError(
            f"{path} is not a run directory with a checkpoint (needs {RESOLVED} and {LAST})"
        )
    return claim_existing(path)


def _resumed_spec(path: Path) -> tuple[Spec, GraphReport]:
    from ..check import check_file

    try:
        report = check_file(path)
    except SpecError as exc:
        raise _not_valid(path, exc.errors) from None
    if not report.ok or report.spec is None or report.graph is None:
        raise _not_valid(path, report.errors)
    return report.spec, report.graph


def _not_valid(path: Path, issues: list[SpecIssue]) -> KtgRuntimeError:
    lines = "\n".join(i.format() for i in issues)
    return KtgRuntimeError(f"{path} is not a valid spec any more:\n{lines}")
