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
        help="models, gates, losses, optimizers, schedulers, datasets, samplers or pruners "
        "(singular or plural)",
    )


def plural(kind: str) -> str:
    """'loss' -> 'losses', 'gate' -> 'gates'."""
    return kind + ("es" if kind.endswith(("s", "x", "ch", "sh")) else "s")


def _kind(text: str, kinds: list[str]) -> str:
    """The registry kind a user names, singular or plural, in any case."""
    from ..errors import did_you_mean

    word = text.strip().lower()
    for kind in kinds:
        if word in (kind, plural(kind)):
            return kind
    names = [plural(k) for k in kinds]
    close = did_you_mean(word, [*names, *kinds])
    hint = f" ({close})" if close else ""
    raise UsageError(f"unknown kind '{text}'{hint}; one of: {', '.join(names)}")


def run(args: argparse.Namespace) -> int:
    from ..registry import REGISTRIES

    # an empty KIND ("$KIND" unset) is refused, not taken for every kind
    kinds = list(REGISTRIES) if args.kind is None else [_kind(args.kind, list(REGISTRIES))]
    for kind in kinds:
        print(f"{plural(kind)}:")
        for comp in REGISTRIES[kind]:
            fields = comp.params.model_fields
            sig = ", ".join(
                f"{n}={f.default!r}" if not f.is_required() else n for n, f in fields.items()
            )
            summary = comp.summary().replace("``", "")  # docstrings' RST literals, as plain text
            print(f"  {comp.name}" + (f"({sig})" if sig else "") + f"  - {summary}")
    return EXIT_OK
