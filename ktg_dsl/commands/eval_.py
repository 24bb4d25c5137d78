"""``ktg eval RUN_DIR``: a trained run's nodes on its evaluation split (or ``--split test``),
from their best or last weights: top-1, top-5, per-class accuracy and a confusion matrix
picture per node; ``--json`` prints everything as JSON instead of a table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .common import EXIT_OK, UsageError, add_threads, checked, named

NAME = "eval"
HELP = "measure a trained run's nodes on a split (top-1, top-5, per class, confusion)"
if TYPE_CHECKING:
    from ..run.evaluation import NodeScores

PER_CLASS_SHOWN = 20  # more classes: the table shows the worst few


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", type=named, metavar="RUN_DIR", help="a run directory (e.g. runs/x/latest)"
    )
    parser.add_argument(
        "--node",
        action="append",
        metavar="N",
        help="a node to evaluate (repeatable; default: every trained node)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="best/<node>.pt (best by the run's evaluation) or last.pt (default: %(default)s)",
    )
    parser.add_argument(
        "--split",
        choices=("val", "test"),
        help="the split to measure on (default: the run's data.split)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--pictures",
        type=named,
        metavar="DIR",
        help="where the confusion matrices go (default: RUN_DIR/eval; 'none' for no pictures)",
    )
    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_writable
    from ..run.rundir import RESOLVED

    path = Path(args.run_dir).expanduser()
    spec_file = path / RESOLVED
    if not path.is_dir() or not spec_file.is_file():
        raise UsageError(
            f"{args.run_dir} is not a run directory (it holds no {RESOLVED}; `ktg train` writes "
            "one in each run directory, e.g. runs/<name>/latest)"
        )
    overrides = [f"data.split={args.split}"] if args.split else []
    spec, graph = checked(str(spec_file), overrides)
    folder = None if args.pictures == "none" else Path(args.pictures or path / "eval").expanduser()
    if folder is not None and folder.exists() and not folder.is_dir():
        raise UsageError(
            f"--pictures {folder} is a file, not a folder: name a folder for the confusion "
            "matrices (made if missing), or none for no pictures"
        )
    if folder is not None:
        if not folder.exists():
            check_writable(folder)
            folder.mkdir()
        check_writable(folder / "x.svg")
    from ..run.evaluation import evaluate_run
    from ..run.threads import apply_threads

    apply_threads(spec.train.threads)  # the run's train.threads (auto: idle cores) or --threads
    results = evaluate_run(path, spec, graph, args.node, args.checkpoint)
    pictures = []
    if folder is not None:
        from ..study.run_plot import draw_confusion

        for r in results:
            title = f"{r.node} ({r.checkpoint}, {r.split}): top-1 {r.top1:.2f}%"
            split = r.split.replace("kNN ", "knn-")  # a self-supervised run: kNN on the split
            file = folder / f"{r.node}-{r.checkpoint}-{split}-confusion.svg"
            pictures.append(draw_confusion(r.confusion, r.classes, title, file))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=1))
        return EXIT_OK
    _table(results)
    for file in pictures:
        print(f"wrote {file}")
    return EXIT_OK


def _table(results: list[NodeScores]) -> None:
    wide = max([5, *(len(r.split) for r in results)])  # "kNN test": a self-supervised run
    print(f"{'node':<12} weights  epoch {'split':<{wide}}   top-1   top-5 samples")
    for r in results:
        epoch = "-" if r.epoch is None else str(r.epoch)
        print(
            f"{r.node:<12} {r.checkpoint:<8} {epoch:>5} {r.split:<{wide}} {r.top1:>6.2f}% "
            f"{r.top5:>6.2f}% {r.samples:>7}"
        )
    for r in results:
        known = [(acc, name) for name, acc in r.per_class.items() if acc is not None]
        many = len(known) > PER_CLASS_SHOWN
        shown = sorted(known)[:5] if many else known
        what = "the 5 worst classes" if many else "per class"
        cells = ", ".join(f"{name} {acc:.1f}%" for acc, name in shown)
        print(f"{r.node} {what}: {cells}")
