"""``ktg schema``: the JSON Schema of specs (for editors), or the Markdown spec reference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_OK

NAME = "schema"
HELP = "print or write the JSON Schema of specs"
TAKES_SPEC = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="write the Markdown spec reference instead of the JSON Schema",
    )


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_text_atomic

    if args.reference:
        from ..spec.reference import reference_markdown

        text = reference_markdown()
    else:
        from ..spec.jsonschema import schema_text

        text = schema_text()
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_text_atomic(Path(args.output), text)
        print(f"wrote {args.output}")
    return EXIT_OK
