"""``ktg plot RUN_DIR``: a run's curves (train and evaluation top-1 and loss per epoch and node)
from its metrics.jsonl, as SVG and PNG beside it, or ``-o FILE`` (.svg, .png or .pdf)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError, named

NAME = "plot"
HELP = "draw a run's accuracy and loss per epoch"
FORMATS = (".svg", ".png", ".pdf")
DEFAULT = "curves"  # RUN_DIR/curves.svg and curves.png


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", type=named, metavar="RUN_DIR", help="a run directory (holds metrics.jsonl)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=named,
        metavar="FILE",
        help="the picture (.svg, .png or .pdf; default: RUN_DIR/curves.svg and curves.png)",
    )


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_not_inputs, check_writable
    from ..run.rundir import METRICS, RESOLVED
    from ..study.results import NotARun, run_rows

    path = Path(args.run_dir).expanduser()
    if args.output:
        out = [Path(args.output).expanduser()]
        if out[0].suffix.lower() not in FORMATS:
            raise UsageError(f"-o {args.output}: write .svg, .png or .pdf")
    else:
        out = [path / f"{DEFAULT}.svg", path / f"{DEFAULT}.png"]
    # a picture written through a link to the log (or the spec) would replace it
    inputs = {"the run's metrics log": str(path / METRICS), "the run's spec": str(path / RESOLVED)}
    for file in out:
        check_not_inputs({"-o" if args.output else "the picture": str(file)}, inputs)
    try:
        rows, split, name = run_rows(path)
    except NotARun as exc:
        raise UsageError(str(exc)) from None
    for file in out:
        check_writable(file)
    from ..study.run_plot import plot_run

    written = plot_run(rows, split, f"{name}: {path}", out)
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK
