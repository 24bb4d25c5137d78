"""Choose a harder protocol for the bundled digits, by measurement, on ``split: val`` only.

On the full digits every method reaches ~99.5%, so independent training, deep mutual learning
and a KTG cannot be told apart. This trains, for each candidate protocol (few training images
per class, symmetric label noise, narrow nodes, epochs, batch size) and each seed, three graphs
on the same three nodes [a, b, c] (a and b narrow, c twice as wide; node a is the objective):

  * independent: labels edges only;
  * dml: deep mutual learning, every edge ``through``;
  * ktg: the KTG paper's CIFAR-100 best-trial matrix (specs/cifar100-ktg-best.yaml);

and on request ``kd`` (node a distilled from a labels-only teacher 4x as wide, trained first on
the same seed) and any spec file (``--spec-variant searched=specs/study/searched.yaml``, run
with ``seed=S`` and ``data.split=val``).

Always ``split: val``: the test part is never looked at here. For each protocol it reports the
final and best val top-1 per node (mean ± std over seeds), the difference of each graph to
independent training paired by seed (same data, same initial weights), a separation score and
the wall time of a run. Raw numbers go to a JSON file; ``--markdown FILE`` prints its tables.

    python benchmarks/study_protocol.py --list
    python benchmarks/study_protocol.py --protocols p50n40-w8 p20-w8 --seeds 0 1 2 3 4
    python benchmarks/study_protocol.py --protocols p50n40-w8 --variants kd --seeds 0 1 2 3 4
    python benchmarks/study_protocol.py --markdown benchmarks/results/study-protocol.json \
        [--protocols p50n40-w8] [--seeds 5 6 7 8 9]

Runs one training at a time, on one thread (``--threads``): on a busy 2-core machine two
threads made these tiny models 10-20x slower (OpenMP threads waiting on each other while other
processes hold a core); ``OMP_NUM_THREADS=1 ktg train ...`` does the same for the CLI. A
finished (protocol, variant, seed) already in ``--out`` is not trained again, so the script can
be stopped and rerun to extend a study. Results: benchmarks/results/study-protocol.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ktg_dsl.check import loads_spec  # noqa: E402
from ktg_dsl.run.recipe import Recipe  # noqa: E402

NODES = ("a", "b", "c")
TEACHER_WIDTH = 4  # the kd teacher is a small_cnn this many times as wide as node a

VARIANTS: dict[str, list[list[str]]] = {
    "independent": [
        ["through", "cutoff", "cutoff"],
        ["cutoff", "through", "cutoff"],
        ["cutoff", "cutoff", "through"],
    ],
    "dml": [["through"] * 3 for _ in range(3)],
    # the KTG paper's best 3-node graph on CIFAR-100 (rows receive, the diagonal is labels)
    "ktg": [
        ["positive_linear", "positive_linear", "positive_linear"],
        ["cutoff", "negative_linear", "through"],
        ["through", "cutoff", "through"],
    ],
}

# name -> protocol: images kept per class (None: all), label-noise rate, width of nodes a and
# b (c is twice as wide), epochs, batch size, learning rate.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "full-w32": dict(per_class=None, noise=0.0, width=32, epochs=30, batch=32, lr=0.05),
    "p20-w8": dict(per_class=20, noise=0.0, width=8, epochs=40, batch=16, lr=0.05),
    "p10-w8": dict(per_class=10, noise=0.0, width=8, epochs=40, batch=16, lr=0.05),
    "p5-w8": dict(per_class=5, noise=0.0, width=8, epochs=40, batch=16, lr=0.05),
    "n20-w16": dict(per_class=None, noise=0.2, width=16, epochs=20, batch=32, lr=0.05),
    "n40-w16": dict(per_class=None, noise=0.4, width=16, epochs=20, batch=32, lr=0.05),
    "p20n20-w8": dict(per_class=20, noise=0.2, width=8, epochs=40, batch=16, lr=0.05),
    "p20n40-w8": dict(per_class=20, noise=0.4, width=8, epochs=40, batch=16, lr=0.05),
    "p20n20-w16": dict(per_class=20, noise=0.2, width=16, epochs=40, batch=16, lr=0.05),
    "p50n40-w8": dict(per_class=50, noise=0.4, width=8, epochs=30, batch=32, lr=0.05),
    "p10n20-w8": dict(per_class=10, noise=0.2, width=8, epochs=40, batch=16, lr=0.05),
    # second round, around the best of the first (p50n40-w8)
    "p50n40-w8-e20": dict(per_class=50, noise=0.4, width=8, epochs=20, batch=32, lr=0.05),
    "p50n40-w8-e40": dict(per_class=50, noise=0.4, width=8, epochs=40, batch=32, lr=0.05),
    "p50n30-w8": dict(per_class=50, noise=0.3, width=8, epochs=30, batch=32, lr=0.05),
    "p50n50-w8": dict(per_class=50, noise=0.5, width=8, epochs=30, batch=32, lr=0.05),
    "p30n40-w8": dict(per_class=30, noise=0.4, width=8, epochs=30, batch=32, lr=0.05),
    "p80n40-w8": dict(per_class=80, noise=0.4, width=8, epochs=30, batch=32, lr=0.05),
    "p50n40-w16": dict(per_class=50, noise=0.4, width=16, epochs=30, batch=32, lr=0.05),
    "p50n40-w8-b16": dict(per_class=50, noise=0.4, width=8, epochs=30, batch=16, lr=0.05),
    "n40-w8": dict(per_class=None, noise=0.4, width=8, epochs=20, batch=32, lr=0.05),
}


def spec_data(
    protocol: dict[str, Any], variant: str, seed: int, teacher: Path | None = None
) -> dict[str, Any]:
    """The spec of one run, always on ``split: val``. ``teacher``: a labels-only small_cnn
    four times as wide as node a; ``kd``: node a distilled from that teacher (frozen, its last
    epoch's weights at ``teacher``) at temperature 4."""
    dataset: dict[str, Any] = {"type": "digits"}
    if protocol["per_class"] is not None:
        dataset["train_per_class"] = protocol["per_class"]
    if protocol["noise"]:
        dataset["label_noise"] = protocol["noise"]
    width = protocol["width"]
    spec: dict[str, Any] = {
        "version": 1,
        "name": f"study-{variant}",
        "seed": seed,
        "data": {"dataset": dataset, "split": "val", "batch_size": protocol["batch"]},
        "train": {"epochs": protocol["epochs"], "precision": "auto"},
        "defaults": {
            "optimizer": {
                "type": "sgd",
                "lr": protocol["lr"],
                "momentum": 0.9,
                "weight_decay": 5.0e-4,
                "nesterov": True,
            },
            "scheduler": "cosine",
            "loss": {"type": "kl", "temperature": 1.0},
        },
    }
    big = {"type": "small_cnn", "width": TEACHER_WIDTH * width}
    if variant == "teacher":
        spec["nodes"] = {"teacher": {"model": big}}
        spec["edges"] = [{"to": "teacher", "from": "labels"}]
    elif variant == "kd":
        spec["nodes"] = {
            "a": {"model": {"type": "small_cnn", "width": width}},
            "teacher": {"model": big, "frozen": True, "checkpoint": str(teacher)},
        }
        spec["edges"] = [
            {"to": "a", "from": "labels"},
            {"to": "a", "from": "teacher", "loss": {"type": "kl", "temperature": 4.0}},
        ]
    else:
        spec["nodes"] = {
            "a": {"model": {"type": "small_cnn", "width": width}},
            "b": {"model": {"type": "small_cnn", "width": width}},
            "c": {"model": {"type": "small_cnn", "width": 2 * width}},
        }
        spec["gate_matrix"] = VARIANTS[variant]
    return spec


def _train(
    spec_text: str, fmt: str, run_dir: Path, overrides: Sequence[str] = ()
) -> tuple[dict[str, Any], Recipe]:
    spec = loads_spec(spec_text, fmt=fmt, overrides=list(overrides))
    if spec.data.split != "val":
        sys.exit("study_protocol.py only trains on split: val")
    started = time.perf_counter()
    trainer = Recipe(spec, run_dir, progress=False, tensorboard=False)
    trainer.setup()
    result = trainer.train()
    trainer.cleanup()
    run = {
        "final": {n: round(row["val_top1"], 3) for n, row in result.last.items()},
        "best": {n: round(row["val_top1"], 3) for n, row in result.best.items()},
        "train_s": round(result.wall_time, 2),
        "run_s": round(time.perf_counter() - started, 2),
        "precision": trainer.program.precision,
        "train_images": len(trainer.bundle.train),
    }
    return run, trainer


def train_once(
    protocol: dict[str, Any], variant: str, seed: int, tmp: Path, files: dict[str, Path]
) -> dict[str, Any]:
    run_dir = tmp / f"{variant}-{seed}"
    if variant in files:  # a spec file (e.g. the exported search result) on this seed
        text = files[variant].read_text()
        run, _ = _train(text, "yaml", run_dir, [f"seed={seed}", "data.split=val"])
        return run
    if variant == "kd":
        teacher_dir = tmp / f"teacher-{seed}"
        teacher, _ = _train(json.dumps(spec_data(protocol, "teacher", seed)), "json", teacher_dir)
        spec = spec_data(protocol, "kd", seed, teacher=teacher_dir / "last.pt")
        run, _ = _train(json.dumps(spec), "json", run_dir)
        run["final"].pop("teacher", None)
        run["best"].pop("teacher", None)
        run["teacher"] = teacher
        run["run_s"] = round(run["run_s"] + teacher["run_s"], 2)  # both runs
        return run
    run, _ = _train(json.dumps(spec_data(protocol, variant, seed)), "json", run_dir)
    return run


def _ms(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """runs[variant][seed] -> per variant: mean/std per node and metric (``mean``: the mean of
    nodes a, b, c where a graph has all three), and the paired difference to independent
    training (same seed: same data and initial weights)."""
    out: dict[str, Any] = {}
    base = runs.get("independent", {})
    for variant, by_seed in runs.items():
        seeds = sorted(by_seed, key=int)
        row: dict[str, Any] = {"seeds": [int(s) for s in seeds]}
        nodes = list(by_seed[seeds[0]]["final"])
        if set(NODES) <= set(nodes):
            nodes.append("mean")
        for metric in ("final", "best"):
            for node in nodes:
                values = [_value(by_seed[s], metric, node) for s in seeds]
                row[f"{metric}_{node}"] = [round(v, 2) for v in _ms(values)]
                common = [s for s in seeds if s in base]
                if variant != "independent" and len(common) > 1:
                    diffs = [
                        _value(by_seed[s], metric, node) - _value(base[s], metric, node)
                        for s in common
                    ]
                    row[f"{metric}_{node}_vs_independent"] = [round(v, 2) for v in _ms(diffs)]
        row["run_s"] = round(statistics.mean(by_seed[s]["run_s"] for s in seeds), 1)
        out[variant] = row
    if {"dml", "ktg"} <= set(runs):
        common = sorted(set(runs["dml"]) & set(runs["ktg"]), key=int)
        for node in ("a", "mean"):
            diffs = [
                _value(runs["ktg"][s], "final", node) - _value(runs["dml"][s], "final", node)
                for s in common
            ]
            out["ktg"][f"final_{node}_vs_dml"] = [round(v, 2) for v in _ms(diffs)]
    out["separation"] = {node: separation(out, node) for node in ("a", "mean")}
    return out


def separation(summary: dict[str, Any], node: str) -> float | None:
    """How well the final val top-1 of ``node`` tells the three graphs apart: the smallest
    difference of means between two of them, over the largest standard deviation over seeds
    (> 1: every pair of graphs differs by more than the seed noise of any)."""
    names = [v for v in VARIANTS if v in summary]
    if len(names) < 2:
        return None
    means = [summary[v][f"final_{node}"][0] for v in names]
    stds = [summary[v][f"final_{node}"][1] for v in names]
    gap = min(abs(x - y) for i, x in enumerate(means) for y in means[i + 1 :])
    return round(gap / max(max(stds), 1e-9), 2)


def _value(run: dict[str, Any], metric: str, node: str) -> float:
    if node == "mean":
        return statistics.mean(run[metric][n] for n in NODES)
    return float(run[metric][node])


def markdown(
    data: dict[str, Any], names: list[str] | None = None, seeds: list[int] | None = None
) -> str:
    lines = []
    for name in names or list(data["protocols"]):
        entry = data["protocols"][name]
        runs = entry["runs"]
        if seeds is not None:
            runs = {v: {s: r for s, r in by.items() if int(s) in seeds} for v, by in runs.items()}
            runs = {v: by for v, by in runs.items() if by}
        if not runs:
            continue
        summary = summarise(runs)
        p = entry["protocol"]
        lines += [
            f"### {name}: train_per_class {p['per_class']}, label_noise {p['noise']}, "
            f"width {p['width']}/{p['width']}/{2 * p['width']}, {p['epochs']} epochs, "
            f"batch {p['batch']}, lr {p['lr']}",
            "",
            "| variant | seeds | final a | final b | final c | best a | final mean "
            "| Δ final a vs indep. | Δ final mean vs indep. | s/run |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for variant, row in summary.items():
            if variant == "separation":
                continue

            def cell(key: str, row: dict[str, Any] = row) -> str:
                if key not in row:
                    return "-"
                m, s = row[key]
                return f"{m:+.2f} ± {s:.2f}" if "_vs_" in key else f"{m:.2f} ± {s:.2f}"

            lines.append(
                f"| {variant} | {len(row['seeds'])} | {cell('final_a')} | {cell('final_b')} "
                f"| {cell('final_c')} | {cell('best_a')} | {cell('final_mean')} "
                f"| {cell('final_a_vs_independent')} | {cell('final_mean_vs_independent')} "
                f"| {row['run_s']} |"
            )
        ktg = summary.get("ktg", {})
        if "final_a_vs_dml" in ktg:
            (da, sa), (dm, sm) = ktg["final_a_vs_dml"], ktg["final_mean_vs_dml"]
            lines.append("")
            lines.append(
                f"ktg vs dml, paired: final a {da:+.2f} ± {sa:.2f}, "
                f"final mean {dm:+.2f} ± {sm:.2f}."
                f" Separation (smallest gap between two graphs' means / largest std): "
                f"node a {summary['separation']['a']}, mean of nodes "
                f"{summary['separation']['mean']}."
            )
        lines.append("")
    return "\n".join(lines)


def overview(
    data: dict[str, Any], names: list[str] | None = None, seeds: list[int] | None = None
) -> str:
    """One line per protocol: node a's final val top-1 per graph, and the separation."""
    lines = [
        "| protocol | per class | noise | widths | epochs | batch | seeds | independent | dml "
        "| ktg | ktg − dml (paired) | separation a / mean | s/run |",
        "| --- | ---: | ---: | --- |" + " ---: |" * 9,
    ]
    for name in names or list(data["protocols"]):
        entry = data["protocols"][name]
        runs = {
            v: {s: r for s, r in by.items() if seeds is None or int(s) in seeds}
            for v, by in entry["runs"].items()
            if v in VARIANTS
        }
        runs = {v: by for v, by in runs.items() if by}
        if set(runs) != set(VARIANTS):
            continue
        summary = summarise(runs)
        p = entry["protocol"]
        w = p["width"]
        cells = [
            f"{summary[v]['final_a'][0]:.1f} ± {summary[v]['final_a'][1]:.1f}" for v in VARIANTS
        ]
        d, sd = summary["ktg"]["final_a_vs_dml"]
        n = min(len(summary[v]["seeds"]) for v in VARIANTS)
        run_s = statistics.mean(summary[v]["run_s"] for v in VARIANTS)
        lines.append(
            f"| {name} | {p['per_class'] or 'all'} | {p['noise']} | {w}/{w}/{2 * w} "
            f"| {p['epochs']} | {p['batch']} | {n} | "
            + " | ".join(cells)
            + f" | {d:+.1f} ± {sd:.1f} "
            f"| {summary['separation']['a']} / {summary['separation']['mean']} | {run_s:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocols", nargs="*", default=[], help="names from --list")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), help=f"of {[*VARIANTS, 'kd']}")
    ap.add_argument(
        "--spec-variant",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also train this spec file (with seed=S, data.split=val) as variant NAME",
    )
    ap.add_argument(
        "--seeds", nargs="*", type=int, help="default 0 1 2; with --markdown: only these"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/study-protocol.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--list", action="store_true", help="list the candidate protocols")
    ap.add_argument("--markdown", type=Path, help="print the tables of a results file")
    args = ap.parse_args()
    if args.list:
        for name, p in PROTOCOLS.items():
            print(f"{name:14} {p}")
        return 0
    if args.markdown:
        data = json.loads(args.markdown.read_text())
        print(overview(data, args.protocols or None, args.seeds) + "\n")
        print(markdown(data, args.protocols or None, args.seeds))
        return 0
    args.seeds = [0, 1, 2] if args.seeds is None else args.seeds
    import torch

    torch.set_num_threads(args.threads)
    data: dict[str, Any] = {"protocols": {}}
    if args.out.exists():
        data = json.loads(args.out.read_text())
    data["split"] = "val (train on the train part, evaluate on val; test never used)"
    data["nodes"] = "a, b: small_cnn(width); c: small_cnn(2 * width); objective node a"
    data["variants"] = {
        **VARIANTS,
        "kd": f"node a distilled (KL, T=4) from a frozen labels-only small_cnn "
        f"{TEACHER_WIDTH}x as wide, trained first on the same seed and protocol (its last "
        "epoch's weights); run_s counts both runs",
        **data.get("variants", {}),
    }
    files = {}
    for item in args.spec_variant:
        variant, _, path = item.partition("=")
        files[variant] = Path(path)
        data["variants"][variant] = f"{path} with seed=S, data.split=val"
        args.variants.append(variant)
    data["threads"] = args.threads
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.protocols:
            protocol = PROTOCOLS[name]
            entry = data["protocols"].setdefault(name, {"protocol": protocol, "runs": {}})
            if entry["protocol"] != protocol:
                sys.exit(f"{name}: the protocol changed since {args.out} was written")
            for seed in args.seeds:
                for variant in args.variants:
                    runs = entry["runs"].setdefault(variant, {})
                    if str(seed) in runs:
                        continue
                    run = train_once(protocol, variant, seed, Path(tmp) / name, files)
                    runs[str(seed)] = run
                    data["date"] = time.strftime("%Y-%m-%d")
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(data, indent=1) + "\n")
                    print(
                        f"{name} seed {seed} {variant:11} final "
                        + " ".join(f"{n} {v:6.2f}" for n, v in run["final"].items())
                        + f"  ({run['run_s']} s)",
                        flush=True,
                    )
            print(markdown(data, [name]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
