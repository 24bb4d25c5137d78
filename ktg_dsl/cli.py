"""The ``ktg`` command: build the parser from ``commands/``, dispatch, turn errors into exit
codes.

Exit codes: 0 success (warnings allowed), 1 the spec or the run has a problem the user must
fix, 2 a file cannot be read or the command line is wrong, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

from .commands import COMMANDS
from .commands.common import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    CommandExit,
    UsageError,
    err,
    print_issues,
)
from .errors import ArgumentError, KtgRuntimeError, SpecError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktg", description="Knowledge Transfer Graphs from a declarative spec."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        p.set_defaults(func=command.run)
        command.add_arguments(p)
        p.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE",
            help="import a Python module that registers components (repeatable)",
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
            err(f"ktg: {exc}")
            return EXIT_USAGE
        with _threads_given(getattr(args, "threads", None)):
            return int(args.func(args))
    except CommandExit as exc:
        return exc.code
    except (UsageError, ArgumentError) as exc:
        err(f"ktg: {exc}")
        return EXIT_USAGE
    except SpecError as exc:
        print_issues(exc.issues)
        return EXIT_USAGE if exc.unreadable else EXIT_INVALID
    except KtgRuntimeError as exc:
        err(f"ktg: error: {exc}")
        return EXIT_INVALID
    except KeyboardInterrupt:
        err("ktg: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


@contextlib.contextmanager
def _threads_given(threads: str | None) -> Iterator[None]:
    """``--threads``: for this command and every worker and rank it starts (they inherit the
    environment); as it was afterwards (``main`` may be called again in this process)."""
    if threads is None:
        yield
        return
    from .run.threads import THREADS_ENV, env_kept

    with env_kept(THREADS_ENV):
        os.environ[THREADS_ENV] = threads
        yield


def _forget_working_folder() -> None:
    """``python -m ktg_dsl.cli`` puts the working folder first on sys.path; what ktg imports
    later (torch, optuna, PIL, a plugin's own imports) must not come from there (a torch.py in
    the folder would run). The ``ktg`` command never has it there."""
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


if __name__ == "__main__":  # pragma: no cover
    _forget_working_folder()
    sys.exit(main())
