"""``ktg report PATH [-o FILE]``: one self-contained HTML page for a run directory, a study
directory or a search study (its journal, the folder holding it, or a storage URL)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .common import EXIT_OK, UsageError, positive_int

NAME = "report"
HELP = "write one self-contained HTML page for a run, a study or a search"
DEFAULT = "report.html"
SUFFIXES = (".html", ".htm")
MAX_TOP = 40  # as many run pages as a study's page embeds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        metavar="PATH",
        help="a run directory, a study directory (ktg study -o), or a search: its journal "
        "file, the folder holding study.journal, or a storage URL (sqlite:///ktg.db)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=f"the page (.html; default: {DEFAULT} in the run or study directory, or beside "
        "the search's journal)",
    )
    parser.add_argument("--study", metavar="NAME", help="a search: the study of the storage")
    parser.add_argument(
        "--top",
        type=_top,
        default=3,
        metavar="K",
        help=f"a search: how many of the best trials' graphs to draw (default 3; 1 to {MAX_TOP})",
    )


def _top(text: str) -> int:
    value = positive_int(text)
    if value > MAX_TOP:  # each is a graph and its run's whole page, inside this one
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {MAX_TOP} (each graph brings its run's page), got {value}"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_not_inputs, check_writable, write_text_atomic
    from ..errors import KtgRuntimeError
    from ..report import Kind, build_page, kind_of
    from ..report.build import inputs_of
    from ..report.rundata import NotAReport

    try:
        kind, target = kind_of(args.path)
    except NotAReport as exc:
        raise UsageError(str(exc)) from None
    if args.output is not None and not args.output.strip():
        raise UsageError("-o is empty: name the page's file (.html), or leave -o out")
    out = Path(args.output).expanduser() if args.output else _default(kind, target)
    if out.suffix.lower() not in SUFFIXES:
        raise UsageError(f"-o {out}: name an .html file (the page is HTML)")
    real = Path(os.path.realpath(out))
    if out.is_symlink() and real.suffix.lower() not in SUFFIXES:  # a link to a run's log...
        raise UsageError(
            f"-o {out} links to {real}, which is not an .html file: writing the page would "
            "replace it; name another file"
        )
    # a page written through a link to the metrics log (or the journal) would replace it
    check_not_inputs({"-o" if args.output else "the page": str(out)}, inputs_of(kind, target))
    if args.study and kind is not Kind.SEARCH:
        raise UsageError(
            f"--study names a study of a search's storage; {args.path} is a {kind.value} "
            "directory: leave --study out"
        )
    try:  # an input that cannot be read, or an output that cannot be written: exit 2
        check_writable(out)
        _, page = build_page(args.path, out=out, study=args.study, top=args.top)
    except KtgRuntimeError as exc:
        raise UsageError(str(exc)) from None
    try:  # a temporary file beside the page, renamed over it: a failure leaves the old page
        write_text_atomic(out, page)
    except KtgRuntimeError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # the temporary file could not even be made (e.g. under /proc)
        raise UsageError(
            f"cannot write {out}: {exc.strerror or exc}; nothing was written (an older page "
            "of that name is unchanged)"
        ) from None
    print(f"wrote {out} ({kind.value} page, {len(page.encode()) / 1024:.0f} kB)")
    return EXIT_OK


def _default(kind: object, target: str) -> Path:
    from ..report import Kind

    folder = Path(target).parent if kind is Kind.SEARCH else Path(target)
    if kind is Kind.SEARCH and "://" in target:
        raise UsageError("a search in a storage URL has no folder to write into: give -o FILE")
    return folder / DEFAULT
