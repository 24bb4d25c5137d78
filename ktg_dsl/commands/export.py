"""``ktg export RUN_DIR --node N --format onnx|torchscript -o FILE``: one trained node (its
best weights) as a deployable file, checked against the PyTorch model on export."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError, named

NAME = "export"
HELP = "write one trained node as ONNX or TorchScript (checked against PyTorch)"
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".ts", ".torchscript")}
NAMES = {"onnx": "an ONNX model", "torchscript": "a TorchScript file"}
# how a file of each format begins: ONNX's first field (ir_version, field 1, a varint); a zip
HEADS = {"onnx": b"\x08", "torchscript": b"PK"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", type=named, metavar="RUN_DIR", help="a run directory (e.g. runs/x/latest)"
    )
    parser.add_argument("--node", required=True, metavar="N", help="the node to export")
    parser.add_argument(
        "--format",
        choices=("onnx", "torchscript"),
        default="onnx",
        help="the file's format (default: %(default)s)",
    )
    parser.add_argument(
        "-o", "--output", required=True, type=named, metavar="FILE", help="the file to write"
    )


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_not_inputs, check_writable
    from ..run.rundir import BEST, written_files

    path = Path(args.run_dir).expanduser()
    if not path.is_dir():
        raise UsageError(f"{args.run_dir} is not a run directory")
    if args.node in ("", ".", "..") or Path(args.node).name != args.node:
        raise UsageError(
            f"--node {args.node!r} is not a node name (a name of the spec's nodes, without a "
            "folder: export reads RUN_DIR/best/<node>.pt)"
        )
    source = path / BEST / f"{args.node}.pt"
    if not source.is_file():
        held = sorted(p.stem for p in (path / BEST).glob("*.pt")) if (path / BEST).is_dir() else []
        nodes = f"; it has best weights of: {', '.join(held)}" if held else ""
        raise UsageError(f"{source} does not exist: no best weights of node '{args.node}'{nodes}")
    out = _output(args.output, args.format)
    # the node file, or any other file of the run (its spec, last.pt, ...): never replaced
    check_not_inputs({"-o": str(out)}, {"the node file": str(source), **written_files(path)})
    check_writable(out)
    from ..run.export import ATOL, RTOL, export_node
    from ..run.trained import load_node

    report = export_node(load_node(source), args.format, out)
    if report.checked:
        print(
            f"wrote {out} ({args.format}); it matches PyTorch within {ATOL:g} + {RTOL:g} x "
            f"|output| (largest difference {report.max_abs_diff:.2g})"
        )
    else:
        print(
            f"wrote {out} ({args.format}); not checked: onnxruntime is not installed "
            "(pip install 'ktg-dsl[export]')"
        )
    return EXIT_OK


def _output(text: str, fmt: str) -> Path:
    """``-o``, refused (exit 2) when it names the other format (``-o a.pt`` with the
    default ``--format onnx``), or is an existing file that is not of the format (a spec, a
    text): an export replaces only what an export could have written."""
    from ..atomic import check_replaceable, file_head

    out = Path(text).expanduser()
    other = next(f for f in SUFFIXES if f != fmt)
    if out.suffix.lower() in SUFFIXES[other]:
        raise UsageError(
            f"-o {text} is named as {NAMES[other]} ({out.suffix}), but --format is {fmt}: give "
            f"--format {other}, or name the file {SUFFIXES[fmt][0]}"
        )
    head = HEADS[fmt]
    check_replaceable(out, "-o", NAMES[fmt], lambda f: file_head(f, len(head)) == head)
    return out
