"""``ktg study SPEC... --seeds 5``: train every spec with every seed in one resumable study
directory, then print and write the tables (mean ± std over seeds; paired tests against the
baseline) and the pictures. ``--summary DIR`` reprints the tables without training."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .common import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    CommandExit,
    UsageError,
    add_overrides,
    add_threads,
    checked,
    plural,
    positive_int,
    say,
)

if TYPE_CHECKING:
    from ..study.manifest import StudyEntry
    from ..study.plan import StudySpec
    from ..study.session import Prepared

NAME = "study"
HELP = "train specs over several seeds and compare them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="*", metavar="SPEC", help="the spec files to compare")
    parser.add_argument(
        "--seeds",
        default=None,  # 5: seeds 0..4 (None tells a --seeds given with --summary)
        metavar="N|LIST",
        help="a count (5: seeds 0..4, the default) or a list (0,3,7); each overrides the "
        "spec's seed",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="the study directory (default: studies/<spec names joined by -vs->)",
    )
    parser.add_argument(
        "--jobs", type=positive_int, default=None, help="runs to train side by side (processes)"
    )
    parser.add_argument(
        "--baseline",
        metavar="NAME",
        help="the spec the others are compared with (default: the first)",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        help="compare this node (default: each node of the same name in both specs, or the "
        "graph mean when they share none)",
    )
    parser.add_argument("--summary", metavar="DIR", help="print the tables of a study; no training")
    parser.add_argument("--no-pictures", action="store_true", help="write the tables only")
    add_overrides(parser)
    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    from ..study.plan import parse_seeds

    if args.summary:
        given = {
            "SPEC": args.spec,
            "--set": args.set,
            "--seeds": args.seeds is not None,
            "-o": args.output,
            "--jobs": args.jobs is not None,
            "--no-pictures": args.no_pictures,
        }
        extra = [name for name, value in given.items() if value]
        if extra:  # each would be ignored: --summary trains nothing and writes nothing
            raise UsageError(
                f"--summary DIR reads a study: it trains and writes nothing, so give no "
                f"{extra[0]} with it (only --baseline and --node go with it)"
            )
        return _summary(args)
    if not args.spec:
        raise UsageError("ktg study needs one or more SPECs (or --summary DIR)")
    args.jobs = args.jobs or 1
    try:
        seeds = parse_seeds("5" if args.seeds is None else args.seeds)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    specs = _checked_specs(args.spec, args.set, seeds[0])
    entries = [s.entry for s in specs]
    _check_choices(entries, args.baseline, args.node)
    prep = _prepare(args, specs, seeds)
    return _train(prep, args)


def _checked_specs(files: list[str], overrides: list[str], seed: int) -> list[StudySpec]:
    """Every spec checked as ``ktg validate`` does (all their issues printed before the
    command ends), then that they can be compared in one study."""
    from ..study.plan import check_comparable, describe

    checked_ok, code = [], 0
    for file in files:
        try:
            checked_ok.append((file, *checked(file, [*overrides, f"seed={seed}"])))
        except CommandExit as exc:
            code = max(code, exc.code)
    if code:
        raise CommandExit(code)
    specs = [describe(file, spec, graph) for file, spec, graph in checked_ok]
    check_comparable(specs)
    return specs


def _check_choices(entries: list[StudyEntry], baseline: str | None, node: str | None) -> None:
    names = [e.name for e in entries]
    if baseline is not None and baseline not in names:
        raise UsageError(
            f"--baseline {baseline}: no spec of this study is named so ({', '.join(names)})"
        )
    if node is not None:
        lacking = [e.name for e in entries if node not in e.nodes]
        if lacking:
            raise UsageError(f"--node {node}: not a node of {', '.join(lacking)}")


def _prepare(args: argparse.Namespace, specs: list[StudySpec], seeds: list[int]) -> Prepared:
    from ..study.manifest import NotAStudy
    from ..study.plan import default_name
    from ..study.session import prepare

    names = [s.entry.name for s in specs]
    out = Path(args.output) if args.output else Path("studies") / default_name(names)
    try:
        prep = prepare(out, out.name, specs, seeds, baseline=args.baseline, node=args.node)
    except NotAStudy as exc:
        raise UsageError(str(exc)) from None
    for folder in prep.stale:
        say(f"stale: {out / folder} holds runs of an earlier version of a spec; they are left out")
    for key in prep.lost:
        say(f"warning: {out / key} was recorded as finished but is gone; it is trained again")
    counts = {s: sum(r.state == s for r in prep.runs) for s in ("finished", "resume", "new")}
    say(
        f"study {out}: {plural(len(specs), 'spec')} x {plural(len(seeds), 'seed')}; "
        f"{counts['finished']} finished before, {counts['resume']} to resume, "
        f"{counts['new']} to train"
        + (f", {args.jobs} at a time" if args.jobs > 1 and len(prep.todo) > 1 else "")
    )
    return prep


def _train(prep: Prepared, args: argparse.Namespace) -> int:
    from ..study.display import Display
    from ..study.session import results_of, run_study, write_outputs
    from ..study.tables import markdown

    finished = len(prep.runs) - len(prep.todo)
    with Display(total=len(prep.runs), done=finished) as display:
        outcome = run_study(prep, jobs=args.jobs, plugins=args.plugin, display=display)
    if outcome.interrupted:
        say(
            f"study interrupted: {plural(len(outcome.done), 'run')} finished now and kept; "
            "stopped runs continue where they stopped. Run the same command again to go on."
        )
        return EXIT_INTERRUPTED
    res = results_of(prep)
    written = write_outputs(prep.study.path, res, pictures=not args.no_pictures)
    print(markdown(res), end="")
    say("wrote " + ", ".join(str(p) for p in written))
    problems = [*outcome.failed, *((label, "stopped") for label in outcome.stopped)]
    if problems:
        lines = "\n".join(f"  {label}: {reason}" for label, reason in problems)
        say(f"{plural(len(problems), 'run')} did not finish:\n{lines}\nrerun the command to retry")
    if res.unreadable:
        say(
            f"{plural(len(res.unreadable), 'finished run')} could not be read (see the warnings "
            "above): move their folders aside and rerun the command to train them again"
        )
    return EXIT_INVALID if problems or res.unreadable else EXIT_OK


def _summary(args: argparse.Namespace) -> int:
    from ..study.manifest import NotAStudy, StudyDir
    from ..study.session import summary
    from ..study.tables import markdown

    try:
        manifest = StudyDir(args.summary).read()
    except NotAStudy as exc:
        raise UsageError(str(exc)) from None
    _check_choices(manifest.specs, args.baseline, args.node)
    res = summary(args.summary, args.baseline, args.node)
    print(markdown(res), end="")
    return EXIT_OK
