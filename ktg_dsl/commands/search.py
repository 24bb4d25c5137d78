"""``ktg search SPEC``: run (or continue) an Optuna study of the spec's ``search:`` section,
with ``--jobs N`` worker processes; ``--summary`` and ``--export`` read a study."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

from ..run.workers import worker_command
from .common import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    UsageError,
    add_overrides,
    add_spec,
    add_threads,
    checked,
    positive_int,
    say,
)

if TYPE_CHECKING:
    from ..spec.schema import Spec

NAME = "search"
HELP = "search gates and models with Optuna"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec(parser)
    parser.add_argument(
        "--storage",
        help="Optuna storage URL or journal file (default: a journal file next to the runs)",
    )
    parser.add_argument("--study", help="study name (default: the spec's name)")
    parser.add_argument("--trials", type=positive_int, help="trials for this worker to run")
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="trials to run in parallel processes (default: %(default)s)",
    )
    parser.add_argument("--export", metavar="FILE", help="write the best (or --trial) trial's spec")
    parser.add_argument("--trial", type=int, help="with --export: this trial instead of the best")
    parser.add_argument("--summary", action="store_true", help="print the best trials")
    parser.add_argument(
        "--top",
        type=positive_int,
        default=5,
        help="with --summary: how many (default: %(default)s)",
    )
    add_overrides(parser)
    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_not_inputs
    from ..search.storage import default_storage, open_storage

    if args.trial is not None and not args.export:
        raise UsageError("--trial N goes with --export FILE")
    spec, _ = checked(args.spec, args.set)
    if spec.search is None:
        raise UsageError(f"{args.spec} has no 'search:' section")
    url = args.storage or str(default_storage(spec))
    name = args.study or spec.name
    if args.export:
        check_not_inputs({"--export": args.export}, _inputs(args.spec, url))
    storage = open_storage(url)
    if args.export or args.summary:
        return _read(spec, storage, url, name, args)
    from ..run.threads import SHARE_ENV, env_kept

    with env_kept(SHARE_ENV):  # --jobs gives this process a share of the cores for its trials
        return _optimize(spec, storage, url, name, args)


def _inputs(spec: str, url: str) -> dict[str, str]:
    """The files the command reads: the spec, and the study's journal or SQLite file."""
    files = {"the spec": spec}
    if "://" not in url:
        files["the study's journal"] = url
    elif url.startswith("sqlite:///"):
        files["the study's database"] = url.removeprefix("sqlite:///")
    return files


def _read(spec: Spec, storage: Any, url: str, name: str, args: argparse.Namespace) -> int:
    from ..search.optimize import export_trial, load_study
    from ..search.summary import format_summary

    study = load_study(storage, name, url)
    if args.summary:
        print(format_summary(study, spec, args.top))
    if args.export:
        what = export_trial(study, args.trial, args.export)
        print(f"wrote {args.export} ({what})")
    return EXIT_OK


def _optimize(spec: Spec, storage: Any, url: str, name: str, args: argparse.Namespace) -> int:
    from ..search.optimize import plan_trials, run_trials
    from ..search.summary import format_summary, ranked

    plan = plan_trials(spec, storage, name, args.trials, url)
    if plan.reaped:
        say(
            f"trials {plan.reaped} were left running by a worker that died: marked failed "
            "and queued again"
        )
    if plan.mine == 0:
        print(
            f"study '{name}' already has {plan.done} finished trials (search.trials: {plan.total})"
        )
        from ..search.optimize import load_study

        print(format_summary(load_study(storage, name, url), spec, args.top))
        return EXIT_OK
    share, procs = plan.mine, []
    if args.jobs > 1:
        share = None if plan.mine is None else math.ceil(plan.mine / args.jobs)
        procs = _spawn_workers(args, url, name, args.jobs - 1, share)
    say(
        f"study '{name}' in {url}: {plan.done} trials done, this worker runs up to "
        f"{share if share is not None else 'unlimited'}"
        + (f" (+{args.jobs - 1} worker processes)" if procs else "")
    )
    try:
        study, stopped = run_trials(spec, storage, name, share)
    except KeyboardInterrupt:
        say(
            "search interrupted; the running trial is marked failed. Run the same command "
            "again to continue the study."
        )
        _stop(procs)
        return EXIT_INTERRUPTED
    if stopped:
        say(
            "search stopped after its trial finished. Run the same command again to continue "
            "the study."
        )
        _stop(procs)
        return EXIT_INTERRUPTED
    code = max([p.wait() for p in procs], default=0)
    print(format_summary(study, spec, args.top))
    if not ranked(study):
        say(f"no trial of study '{name}' completed; the reasons are listed above")
        return EXIT_INVALID
    return EXIT_INVALID if code != 0 else EXIT_OK


def _spawn_workers(
    args: argparse.Namespace, url: str, name: str, count: int, share: int | None
) -> list[subprocess.Popen[bytes]]:
    # values joined to their options and the spec after `--`: a leading dash stays a name
    argv = ["search", f"--storage={url}", f"--study={name}"]
    argv += [f"--trials={share}"] * (share is not None)
    argv += [f"--plugin={p}" for p in args.plugin] + [f"--set={s}" for s in args.set]
    argv += ["--", str(args.spec)]
    cmd = worker_command(argv, args.plugin)
    from ..run.threads import SHARE_ENV, usable_cores

    # the cores are shared out between the workers and this process, which trains trials too:
    # each trial's train.threads stays within its process's share
    os.environ[SHARE_ENV] = str(max(1, usable_cores(os.environ)[0] // (count + 1)))
    env = dict(os.environ)
    procs = []
    for _ in range(count):
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
        time.sleep(0.2)  # stagger start-up: different seeds, less contention on the storage
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGINT)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=60)
