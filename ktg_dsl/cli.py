"""The ``ktg`` command. Thin: parse arguments, call the library, print, exit.

Exit codes: 0 success (warnings allowed), 1 the spec or the run has a problem the user must
fix, 2 a file cannot be read or the command line is wrong, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CommandExit, KtgRuntimeError, SpecError, SpecIssue, UsageError

if TYPE_CHECKING:
    from .graph import GraphReport
    from .spec.schema import Spec

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def print_issues(issues: Sequence[SpecIssue]) -> None:
    for issue in issues:
        _err(issue.format())


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def _summary(file: str, issues: Sequence[SpecIssue]) -> str:
    errors = sum(i.is_error for i in issues)
    warnings = len(issues) - errors
    if errors:
        return f"{file}: invalid ({_plural(errors, 'error')}, {_plural(warnings, 'warning')})"
    return f"{file}: valid" + (f" ({_plural(warnings, 'warning')})" if warnings else "")


# --------------------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    from .spec.api import inspect_file

    worst = EXIT_OK
    for file in args.spec:
        try:
            spec, report, issues = inspect_file(file, args.set or ())
        except SpecError as exc:
            print_issues(exc.issues)
            _err(_summary(file, exc.issues))
            worst = max(worst, EXIT_USAGE if exc.unreadable else EXIT_INVALID)
            continue
        if (
            spec is not None
            and report is not None
            and args.deep
            and not any(i.is_error for i in issues)
        ):
            from .probe import probe_models

            probed = [
                spec.source.attach(i) if spec.source else i for i in probe_models(spec, report)
            ]
            issues = issues + probed
            args.deep = not any("not probed" in i.message for i in probed)
        print_issues(issues)
        if any(i.is_error for i in issues):
            worst = max(worst, EXIT_INVALID)
            _err(_summary(file, issues))
        else:
            assert spec is not None and report is not None
            n_edges = len(
                [e for e in report.edges if not report.graph.edges[e.sender, e.receiver]["closed"]]
            )
            frozen = f", {len(report.frozen)} frozen" if report.frozen else ""
            n_nodes = len(spec.nodes)
            print(
                f"{_summary(file, issues)}: {_plural(n_nodes, 'node')}{frozen}, "
                f"{_plural(n_edges, 'edge')}"
                + (", models checked on the meta device" if args.deep else "")
            )
    return worst


def cmd_schema(args: argparse.Namespace) -> int:
    from .atomic import write_text_atomic

    if args.reference:
        from .spec.reference import reference_markdown

        text = reference_markdown()
    else:
        from .spec.jsonschema import schema_text

        text = schema_text()
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_text_atomic(Path(args.output), text)
        print(f"wrote {args.output}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from .registry import REGISTRIES

    kinds = [args.kind] if args.kind else list(REGISTRIES)
    for kind in kinds:
        if kind not in REGISTRIES:
            raise UsageError(f"unknown kind '{kind}'; one of: {', '.join(REGISTRIES)}")
        print(f"{kind}s:")
        for comp in REGISTRIES[kind]:
            fields = comp.params.model_fields
            sig = ", ".join(
                f"{n}={f.default!r}" if not f.is_required() else n for n, f in fields.items()
            )
            print(f"  {comp.name}" + (f"({sig})" if sig else "") + f"  - {comp.summary()}")
    return EXIT_OK


def _load(args: argparse.Namespace) -> tuple[Spec, GraphReport]:
    """A checked spec and its graph for the commands that go on from validation."""
    from .spec.api import inspect_file

    try:
        spec, report, issues = inspect_file(args.spec, getattr(args, "set", None) or ())
    except SpecError as exc:
        print_issues(exc.issues)
        raise CommandExit(EXIT_USAGE if exc.unreadable else EXIT_INVALID) from None
    if any(i.is_error for i in issues) or spec is None or report is None:
        print_issues(issues)
        _err(_summary(args.spec, issues))
        raise CommandExit(EXIT_INVALID)
    print_issues(issues)  # warnings
    return spec, report


def cmd_render(args: argparse.Namespace) -> int:
    from .render import render_command

    spec, report = _load(args)
    return render_command(spec, report, args)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train_command

    if args.resume:
        return train_command(None, None, args)
    if not args.spec:
        raise UsageError("ktg train needs a SPEC (or --resume RUN_DIR)")
    spec, report = _load(args)
    return train_command(spec, report, args)


def cmd_search(args: argparse.Namespace) -> int:
    from .search import search_command

    if args.trial is not None and not args.export:
        raise UsageError("--trial N goes with --export FILE")
    spec, report = _load(args)
    return search_command(spec, report, args)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench_command

    spec, report = _load(args)
    return bench_command(spec, report, args)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktg", description="Knowledge Transfer Graphs from a declarative spec."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, fn: Callable[[argparse.Namespace], int], help: str, spec: str | None = "SPEC"
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        if spec:
            p.add_argument("spec", metavar=spec, help="the spec file (.yaml, .yml or .json)")
        p.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE",
            help="import a Python module that registers components (repeatable)",
        )
        return p

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY.PATH=VALUE",
            help="override a value of the spec, e.g. --set train.epochs=3",
        )

    p = command("validate", cmd_validate, "check specs and print every problem", spec=None)
    p.add_argument("spec", nargs="+", metavar="SPEC", help="spec files")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also build every model on the meta device and check its output shape",
    )
    overrides(p)

    p = command("render", cmd_render, "draw the graph (Graphviz)")
    p.add_argument("-o", "--output", required=True, help="output file (.svg .png .pdf .dot)")
    p.add_argument(
        "--format",
        choices=["svg", "png", "pdf", "dot"],
        help="default: from the output's extension",
    )
    p.add_argument("--epoch", type=int, help="draw the gate weights in force at this epoch")
    p.add_argument("--show-cutoff", action="store_true", help="also draw cut-off edges")
    p.add_argument(
        "--schedule",
        metavar="FILE",
        help="also plot every edge's gate weight over the epochs (.svg or .csv)",
    )
    overrides(p)

    p = command("train", cmd_train, "train the graph", spec=None)
    p.add_argument("spec", nargs="?", metavar="SPEC", help="the spec file")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last.pt")
    p.add_argument("--run-dir", metavar="DIR", help="default: <out_dir>/<name>/<time>")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    overrides(p)

    p = command("search", cmd_search, "search gates and models with Optuna")
    p.add_argument(
        "--storage",
        help="Optuna storage URL or journal file (default: a journal file next to the runs)",
    )
    p.add_argument("--study", help="study name (default: the spec's name)")
    p.add_argument("--trials", type=positive_int, help="trials for this worker to run")
    p.add_argument(
        "--jobs", type=positive_int, default=1, help="trials to run in parallel processes"
    )
    p.add_argument("--export", metavar="FILE", help="write the best (or --trial) trial's spec")
    p.add_argument("--trial", type=int, help="with --export: this trial instead of the best")
    p.add_argument("--summary", action="store_true", help="print the best trials")
    p.add_argument("--top", type=positive_int, default=5, help="with --summary: how many")
    overrides(p)

    p = command("bench", cmd_bench, "measure the engine against the original loop")
    p.add_argument("--steps", type=positive_int, default=10, help="timed steps per round")
    p.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds")
    p.add_argument("--warmup", type=non_negative_int, default=3, help="untimed steps first")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument(
        "--compile", action="store_true", help="also measure the engine with train.compile: on"
    )
    overrides(p)

    p = command("schema", cmd_schema, "print or write the JSON Schema of specs", spec=None)
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.add_argument(
        "--reference",
        action="store_true",
        help="write the Markdown spec reference instead of the JSON Schema",
    )

    p = command("list", cmd_list, "list registered components", spec=None)
    p.add_argument(
        "kind",
        nargs="?",
        help="model, gate, loss, optimizer, scheduler, dataset, sampler or pruner",
    )
    return parser


def _version() -> str:
    from . import __version__

    return f"ktg {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        from .registry import PluginError, load_plugins

        try:
            load_plugins(args.plugin)
        except PluginError as exc:
            _err(f"ktg: {exc}")
            return EXIT_USAGE
        return int(args.func(args))
    except CommandExit as exc:
        return exc.code
    except UsageError as exc:
        _err(f"ktg: {exc}")
        return EXIT_USAGE
    except SpecError as exc:
        print_issues(exc.issues)
        return EXIT_USAGE if exc.unreadable else EXIT_INVALID
    except KtgRuntimeError as exc:
        _err(f"ktg: error: {exc}")
        return EXIT_INVALID
    except KeyboardInterrupt:
        _err("ktg: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
