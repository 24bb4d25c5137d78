"""``ktg render SPEC -o FILE``: draw the graph (Graphviz), optionally its gate schedule."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_OK, add_overrides, add_spec, checked, named

PICTURES = (".svg", ".png", ".pdf", ".dot", ".gv")  # names a drawing may replace
DRAWINGS = (b"<?xml", b"<svg", b"\x89PNG", b"%PDF", b"digraph", b"strict digraph")  # heads
NAME = "render"
HELP = "draw the graph (Graphviz)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec(parser)
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=named,
        help="output file (.svg .png .pdf .dot), or - for standard output (svg unless --format)",
    )
    parser.add_argument(
        "--format",
        choices=["svg", "png", "pdf", "dot"],
        help="default: from the output's extension (svg for -o -)",
    )
    parser.add_argument("--epoch", type=int, help="draw the gate weights in force at this epoch")
    parser.add_argument("--show-cutoff", action="store_true", help="also draw cut-off edges")
    parser.add_argument(
        "--schedule",
        type=named,
        metavar="FILE",
        help="also plot every edge's gate weight over the epochs (.svg or .csv)",
    )
    add_overrides(parser)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_not_inputs
    from ..render import render_files

    # before anything is read: an output must never replace the spec (or the other output)
    check_not_inputs({"-o": args.output, "--schedule": args.schedule}, {"the spec": args.spec})
    _check_picture_name(args.output)
    spec, graph = checked(args.spec, args.set, weights_needed=False)  # a picture
    written = render_files(
        spec,
        graph,
        output=str(args.output),
        fmt=args.format,
        epoch=args.epoch,
        show_cutoff=args.show_cutoff,
        schedule=args.schedule,
    )
    # status lines go to stderr when a drawing goes to stdout
    status = sys.stderr if "-" in (args.output, args.schedule) else sys.stdout
    for w in written:
        print(f"wrote {w.path} ({w.what})", file=status)
    return EXIT_OK


def _check_picture_name(output: str) -> None:
    """With ``--format``, ``-o`` may have any name; an existing file there that is not a
    drawing (``-o other-spec.yaml --format svg``) is not replaced."""
    from ..atomic import check_replaceable, file_head

    if Path(output).suffix.lower() in PICTURES:
        return
    what = "a drawing (SVG, PNG, PDF or Graphviz)"
    check_replaceable(output, "-o", what, lambda f: file_head(f, 16).lstrip().startswith(DRAWINGS))
