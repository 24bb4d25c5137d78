"""``ktg list [KIND]``: the registered components, with their arguments and defaults."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, UsageError

NAME = "list"
HELP = "list registered components"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind",
        nargs="?",
        help="model, gate, loss, optimizer, scheduler, dataset, sampler or pruner",
    )


def run(args: argparse.Namespace) -> int:
    from ..registry import REGISTRIES

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
