"""Mutual learning vs independent training, and bf16 vs fp32, on the quickstart (digits).

For each seed, trains the quickstart's three nodes
  * as the quickstart graph (deep mutual learning: every edge open),
  * independently (labels edges only),
  * as the quickstart graph at fp32 (the others run at `precision: auto`),
with `split: test` (train on train+val, evaluate on the fixed test part), and reports the final
epoch's test top-1 per node: mean and standard deviation over seeds.

    python benchmarks/quickstart_study.py --seeds 5 --out benchmarks/results/quickstart-study.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ktg_dsl.check import load_spec  # noqa: E402
from ktg_dsl.run.recipe import Recipe  # noqa: E402

VARIANTS = {
    "mutual (auto)": [],
    "independent (auto)": [
        "gate_matrix=[[through,cutoff,cutoff],[cutoff,through,cutoff],[cutoff,cutoff,through]]"
    ],
    "mutual (fp32)": ["train.precision=fp32"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/quickstart-study.json")
    args = ap.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    precisions: dict[str, str] = {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name, extra in VARIANTS.items():
                sets = [f"seed={seed}", "data.split=test", *extra]
                spec = load_spec(ROOT / "specs/quickstart.yaml", overrides=sets)
                trainer = Recipe(
                    spec,
                    Path(tmp) / f"{name}-{seed}".replace(" ", "_"),
                    progress=False,
                    tensorboard=False,
                )
                trainer.setup()
                result = trainer.train()
                trainer.cleanup()
                precisions[name] = trainer.program.precision
                for node, row in result.last.items():
                    results.setdefault(name, {}).setdefault(node, []).append(row["val_top1"])
                print(
                    f"seed {seed} {name}: "
                    + ", ".join(f"{n} {v[-1]:.2f}" for n, v in results[name].items()),
                    flush=True,
                )
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "seeds": args.seeds,
        "split": "test (train on train+val, evaluate on the fixed test part)",
        "precision": precisions,
        "minutes": round((time.time() - started) / 60, 1),
        "final_test_top1": {
            name: {
                node: {
                    "mean": round(statistics.mean(v), 2),
                    "std": round(statistics.stdev(v), 2) if len(v) > 1 else 0.0,
                    "runs": [round(x, 2) for x in v],
                }
                for node, v in nodes.items()
            }
            for name, nodes in results.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(markdown(summary))
    return 0


def markdown(summary: dict) -> str:
    table = summary["final_test_top1"]
    nodes = list(next(iter(table.values())))
    lines = [
        "| variant | precision | " + " | ".join(nodes) + " |",
        "| --- | --- |" + " --- |" * len(nodes),
    ]
    for name, per_node in table.items():
        cells = [f"{per_node[n]['mean']:.2f} ± {per_node[n]['std']:.2f}" for n in nodes]
        lines.append(f"| {name} | {summary['precision'][name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
