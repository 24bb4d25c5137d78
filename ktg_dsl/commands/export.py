"""``ktg export RUN_DIR --node N --format onnx|torchscript -o FILE``: one trained node (its
best weights) as a deployable file, checked against the PyTorch model on export."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError

NAME = "export"
HELP = "write one trained node as ONNX or TorchScript (checked against PyTorch)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (e.g. runs/x/latest)")
    parser.add_argument("--node", required=True, metavar="N", help="the node to export")
    parser.add_argument(
        "--format",
        choices=("onnx", "torchscript"),
        default="onnx",
        help="the file's format (default: %(default)s)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_not_inputs, check_writable
    from ..run.rundir import BEST

    path = Path(args.run_dir).expanduser()
    source = path / BEST / f"{args.node}.pt"
    if not path.is_dir():
        raise UsageError(f"{args.run_dir} is not a run directory")
    if not source.is_file():
        held = sorted(p.stem for p in (path / BEST).glob("*.pt")) if (path / BEST).is_dir() else []
        nodes = f"; it has best weights of: {', '.join(held)}" if held else ""
        raise UsageError(f"{source} does not exist: no best weights of node '{args.node}'{nodes}")
    out = Path(args.output).expanduser()
    check_not_inputs({"-o": str(out)}, {"the node file": str(source)})
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
