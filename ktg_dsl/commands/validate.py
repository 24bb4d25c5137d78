"""``ktg validate SPEC...``: every problem of every spec at once; ``--deep`` also builds each
model on the meta device."""

from __future__ import annotations

import argparse

from ..errors import SpecError
from .common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    add_overrides,
    add_threads,
    err,
    plural,
    print_issues,
    summary,
)

NAME = "validate"
HELP = "check specs and print every problem"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="+", metavar="SPEC", help="spec files")
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also build every model on the meta device and check its output shape",
    )
    add_overrides(parser)
    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    worst = EXIT_OK
    for file in args.spec:
        worst = max(worst, _validate(file, args.set, args.deep))
    return worst


def _validate(file: str, overrides: list[str], deep: bool) -> int:
    from ..check import check_file

    try:
        report = check_file(file, overrides)
    except SpecError as exc:
        print_issues(exc.issues)
        err(summary(file, exc.issues))
        return EXIT_USAGE if exc.unreadable else EXIT_INVALID
    issues, probed = report.issues, False
    if deep and report.ok and report.spec is not None and report.graph is not None:
        from ..probe import probe_models
        from ..probe_features import probe_feature_edges
        from ..run.threads import apply_threads

        apply_threads(report.spec.train.threads)  # teachers' checkpoints are read and checked
        source = report.spec.source
        found = probe_models(report.spec, report.graph)
        found += probe_feature_edges(report.spec, report.graph)
        found = [source.attach(i) if source else i for i in found]
        issues = issues + found
        probed = not any("not probed" in i.message for i in found)
    print_issues(issues)
    if any(i.is_error for i in issues) or report.spec is None or report.graph is None:
        err(summary(file, issues))
        return EXIT_INVALID
    graph, spec = report.graph, report.spec
    frozen = f", {len(graph.frozen)} frozen" if graph.frozen else ""
    print(
        f"{summary(file, issues)}: {plural(len(spec.nodes), 'node')}{frozen}, "
        f"{plural(len(graph.open_edges), 'edge')}"
        + (", models checked on the meta device" if probed else "")
    )
    return EXIT_OK
