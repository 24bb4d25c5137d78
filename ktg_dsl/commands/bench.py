"""``ktg bench SPEC``: images/s of the engine against the original KTG loop and the ideal,
interleaved in one process (see docs/performance.md; a self-supervised spec against the
original's SimCLR loop); ``--nproc N``: the distributed step on N ranks against the
single-process engine (docs/distributed.md; supervised graphs)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .common import (
    EXIT_OK,
    UsageError,
    add_overrides,
    add_spec,
    add_threads,
    checked,
    err,
    named,
    non_negative_int,
    positive_int,
)

if TYPE_CHECKING:
    from ..spec.schema import Spec

NAME = "bench"
HELP = "measure the engine against the original loop"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec(parser)
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=10,
        help="timed steps per round (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=3, help="interleaved rounds (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup",
        type=non_negative_int,
        default=3,
        help="untimed steps first (default: %(default)s)",
    )
    parser.add_argument("--json", type=named, metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--compare",
        type=named,
        metavar="EARLIER.json",
        help="compare with an earlier --json result of this spec, variant by variant (refused "
        "when it was measured with another thread count)",
    )
    parser.add_argument(
        "--variants",
        type=_variants,
        default=None,
        metavar="KIND,...",
        help="measure only these kinds of variant: baseline, engine, ideal, epoch, features "
        "(default: all)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="also measure the engine with train.compile: on"
    )
    parser.add_argument(
        "--nproc",
        type=positive_int,
        metavar="N",
        help="measure N ranks of torch.distributed against the single-process engine instead "
        "(supervised graphs)",
    )
    add_overrides(parser)
    add_threads(parser)


def _variants(text: str) -> tuple[str, ...]:
    from ..bench import KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown variant {unknown[0] if unknown else text!r}; choose from {', '.join(KINDS)}"
        )
    return kinds


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_not_inputs, check_writable, write_text_atomic
    from ..bench.compare import check_replaceable, read_earlier

    spec, _ = checked(args.spec, args.set)
    if spec.self_supervised is not None and args.nproc is not None:
        raise UsageError(
            "ktg bench --nproc measures the supervised distributed step; a self-supervised "
            "graph is measured in one process: leave out --nproc (to time its ranks, time "
            "`ktg train --nproc N`)"
        )
    if args.nproc is not None and (args.compile or args.variants or args.compare):
        flag = "--compile" if args.compile else "--variants" if args.variants else "--compare"
        raise UsageError(f"{flag} goes with the single-process measurement; leave out --nproc")
    if args.variants and "features" in args.variants:
        from ..bench.features import has_feature_edges

        if not has_feature_edges(spec):  # the features kind would measure nothing
            raise UsageError(
                f"--variants features: {args.spec} has no feature edges (an edge between two "
                "nodes' taps), so there is nothing of that kind to measure; leave features out"
            )
    if args.json:
        # --compare's file is read first: a --json of the same name would replace the earlier
        # measurement with this one
        inputs = {"the spec": args.spec, "the --compare file": args.compare or args.spec}
        check_not_inputs({"--json": args.json}, inputs)
        check_replaceable(args.json)
        check_writable(args.json)  # before minutes of measuring, not after
    earlier = read_earlier(args.compare) if args.compare else None
    result = _distributed(args, spec) if args.nproc is not None else _single(args, spec, earlier)
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
        err(f"wrote {args.json}")
    return EXIT_OK


def _distributed(args: argparse.Namespace, spec: Spec) -> dict[str, Any]:
    from ..bench.distributed import format_distributed, run_bench_distributed

    result = run_bench_distributed(
        spec,
        args.nproc,
        steps=args.steps,
        rounds=args.rounds,
        warmup=args.warmup,
        plugins=args.plugin,
        report=err,
    )
    print(format_distributed(result))
    return result


def _single(args: argparse.Namespace, spec: Spec, earlier: dict[str, Any] | None) -> dict[str, Any]:
    from ..bench import KINDS, format_result, run_bench
    from ..bench.compare import check_comparable, format_comparison
    from ..run.threads import apply_threads

    threads = apply_threads(spec.train.threads)
    if earlier is not None:
        check_comparable(earlier, args.compare, threads.count, threads.why)
    result = run_bench(
        spec,
        steps=args.steps,
        rounds=args.rounds,
        warmup=args.warmup,
        with_compile=args.compile,
        kinds=args.variants or KINDS,
        report=err,
    )
    print(format_result(result))
    if earlier is not None:
        print("\n" + format_comparison(earlier, result, args.compare))
    return result
