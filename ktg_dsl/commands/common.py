"""What the commands share: exit codes, the errors that end a command, issue printing, and
loading a spec checked as ``ktg validate`` checks it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import SpecError, SpecIssue, report_lines

if TYPE_CHECKING:
    from ..graph import GraphReport
    from ..spec.schema import Spec

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A wrong command line (exit 2)."""


class CommandExit(Exception):
    """Ends a command with an exit code after its messages were printed."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def err(text: str) -> None:
    print(text, file=sys.stderr)


def say(text: str) -> None:
    """A status line of a long command (``ktg: ...`` on stderr)."""
    print(f"ktg: {text}", file=sys.stderr, flush=True)


def _weights_later(issue: SpecIssue) -> SpecIssue:
    if not issue.is_error or issue.path[-1:] != ("checkpoint",):
        return issue
    hint = f"{issue.hint}; " if issue.hint else ""
    return replace(issue, severity="warning", hint=hint + "the picture needs no weights")


def print_issues(issues: Sequence[SpecIssue]) -> None:
    """Every issue, up to the first 50 (then a line counting the rest; the summary line
    that follows counts them all)."""
    for line in report_lines(issues):
        err(line)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def summary(file: str, issues: Sequence[SpecIssue]) -> str:
    errors = sum(i.is_error for i in issues)
    warnings = len(issues) - errors
    if errors:
        return f"{file}: invalid ({plural(errors, 'error')}, {plural(warnings, 'warning')})"
    return f"{file}: valid" + (f" ({plural(warnings, 'warning')})" if warnings else "")


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def named(text: str) -> str:
    """A file or folder argument that names something: an empty one (``-o "$OUT"`` with OUT
    unset) is a wrong command line, not taken for the default or for the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: name a file or folder (an unset variable?)")
    return text


def positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def threads_arg(text: str) -> str:
    if text == "auto" or (text.isdigit() and 1 <= int(text) <= 4096):
        return text
    raise argparse.ArgumentTypeError(f"expected auto or a number of threads (1-4096), got {text!r}")


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads N|auto``: the CPU threads of this process and of every worker and rank it
    starts; wins over the spec's ``train.threads`` and ``OMP_NUM_THREADS``."""
    parser.add_argument(
        "--threads",
        type=threads_arg,
        metavar="N|auto",
        help="CPU threads of each process: N, or auto (the cores idle when it starts); wins "
        "over train.threads and OMP_NUM_THREADS, and reaches workers and ranks "
        "(default: the spec's train.threads, which defaults to auto)",
    )


def add_spec(parser: argparse.ArgumentParser, nargs: str | None = None) -> None:
    help = "the spec file (.yaml, .yml or .json)"
    if nargs is None:
        parser.add_argument("spec", metavar="SPEC", help=help)
    else:
        parser.add_argument("spec", metavar="SPEC", nargs=nargs, help=help)


def override(text: str) -> str:
    """A ``--set`` whose key path can be read (a wrong one is a wrong command line, exit 2);
    its value is checked with the spec, as a value written in the file (exit 1)."""
    from ..spec.overrides import split_override

    try:
        split_override(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (e.g. --set train.epochs=3)") from None
    return text


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=override,
        metavar="KEY.PATH=VALUE",
        help="override a value of the spec, e.g. --set train.epochs=3",
    )


def checked(
    file: str, overrides: Sequence[str] = (), weights_needed: bool = True
) -> tuple[Spec, GraphReport]:
    """The spec and graph of a file that passes every check (warnings printed); otherwise
    its issues are printed and the command ends (exit 1, or 2 for an unreadable file).
    ``weights_needed=False`` (a picture of the spec): a ``checkpoint:`` that is not there yet
    is a warning, not an error."""
    from ..check import check_file

    try:
        report = check_file(file, overrides)
    except SpecError as exc:
        print_issues(exc.issues)
        raise CommandExit(EXIT_USAGE if exc.unreadable else EXIT_INVALID) from None
    issues = report.issues if weights_needed else [_weights_later(i) for i in report.issues]
    print_issues(issues)
    if any(i.is_error for i in issues) or report.spec is None or report.graph is None:
        err(summary(file, issues))
        raise CommandExit(EXIT_INVALID)
    return report.spec, report.graph
