"""One module per ``ktg`` command: ``add_arguments(parser)`` and ``run(args) -> exit code``.
Only these modules (and ``cli.py``) know the command line; they call the library with typed
keywords and turn its errors into messages and exit codes."""

from . import (
    bench,
    eval_,
    export,
    list_,
    plot,
    render,
    report,
    schema,
    search,
    study,
    train,
    validate,
)

COMMANDS = [
    validate,
    render,
    train,
    eval_,
    export,
    study,
    plot,
    report,
    search,
    bench,
    schema,
    list_,
]

__all__ = ["COMMANDS"]
