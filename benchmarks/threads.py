"""How many CPU threads should ktg train with? The measurements behind ``train.threads: auto``
(docs/performance.md, "Threads").

For each load (0, 1, 2 busy neighbour processes, ``python3 -c "while True: pass"``, started
before and stopped after each load's measurements; or ``late``: one neighbour that starts
``LATE_S`` seconds into each run, once its threads were chosen, and stops with it), each
workload and each thread setting,
the real command runs as a user runs it, in interleaved rounds (setting A B C, A B C, ...) so
that machine noise hits every setting alike:

* ``quickstart``: ``ktg train specs/quickstart.yaml --set train.epochs=5``, wall time of the
  whole command (start-up included, as a user waits for it);
* ``study``: ``ktg train specs/study/ktg.yaml --set train.epochs=10``, the same;
* ``quickstart15``: the same with 15 epochs (for ``late``: the neighbour comes mid-training);
* ``resnet32``: ``ktg bench benchmarks/ktg4-resnet32.yaml --variants engine``, the engine's
  images/s (ResNet-32 x 4 at batch 64).

Settings: ``default`` (no thread option: ``auto``), ``1`` and ``2`` (``--threads N``),
or ``env:N`` / ``env:N:passive`` / ``env:N:nospin`` (``OMP_NUM_THREADS=N``;
with ``OMP_WAIT_POLICY=PASSIVE``; with ``GOMP_SPINCOUNT=0``): the OpenMP knobs.

    python benchmarks/threads.py --json benchmarks/results/threads-cpu-2core.json

The table printed gives each setting's median and its ratio to the best setting of that row
(1.00 = the best; the acceptance bound for ``default`` is 1.25).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LATE_S = 14.0  # the late neighbour's start, seconds into a run (start-up takes ~10 s here)
KTG = [sys.executable, "-m", "ktg_dsl"]

WORKLOADS = {
    "quickstart": ["train", "specs/quickstart.yaml", "--set", "train.epochs=5", "--no-progress"],
    "study": ["train", "specs/study/ktg.yaml", "--set", "train.epochs=10", "--no-progress"],
    "quickstart15": ["train", "specs/quickstart.yaml", "--set", "train.epochs=15", "--no-progress"],
    "resnet32": [
        "bench",
        "benchmarks/ktg4-resnet32.yaml",
        "--variants",
        "engine",
        "--steps",
        "3",
        "--rounds",
        "1",
        "--warmup",
        "1",
    ],
}


def setting_args(setting: str) -> tuple[list[str], dict[str, str]]:
    """The extra command-line arguments and environment of a thread setting."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "KTG_THREADS")}
    if setting == "default":
        return [], env
    if setting.startswith("env:"):
        parts = setting.split(":")
        env["OMP_NUM_THREADS"] = parts[1]
        if "passive" in parts[2:]:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        if "nospin" in parts[2:]:
            env["GOMP_SPINCOUNT"] = "0"  # GNU OpenMP: threads sleep at once at a barrier
        return [], env
    return ["--threads", setting], env


def run_once(
    workload: str, setting: str, scratch: Path, late: bool = False
) -> dict[str, float | int | None]:
    """One run: its wall time, and for the bench the engine's images/s; the threads used."""
    extra, env = setting_args(setting)
    argv = KTG + WORKLOADS[workload] + extra
    out = scratch / f"{workload}-{setting.replace(':', '_')}"
    shutil.rmtree(out, ignore_errors=True)
    if workload == "resnet32":
        argv += ["--json", str(out) + ".json"]
    else:
        argv += ["--run-dir", str(out)]
    tick = time.perf_counter()
    later: list[subprocess.Popen[bytes]] = []
    timer = threading.Timer(LATE_S, lambda: later.extend(neighbours(1)))
    if late:
        timer.start()
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    finally:
        timer.cancel()
        stop(later)
    wall = time.perf_counter() - tick
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    row: dict[str, float | int | None] = {"wall_s": round(wall, 2), "threads": None}
    found = re.findall(r"(\d+) threads? \(", proc.stderr)  # the header's, then any change
    if found:
        row["threads"] = int(found[0])
        row["threads_last"] = int(found[-1])
    if workload == "resnet32":
        result = json.loads(Path(str(out) + ".json").read_text())
        engine = next(k for k in result["images_per_s"] if k.startswith("engine("))
        row["images_per_s"] = result["images_per_s"][engine]
        row["threads"] = result["threads"]
    return row


def neighbours(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def measure(loads: list[str], workloads: list[str], settings: list[str], rounds: int) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="ktg-threads-") as tmp:
        for load in loads:
            busy = neighbours(0 if load == "late" else int(load))
            time.sleep(1.0)
            try:
                for r in range(rounds):
                    for w in workloads:
                        for s in settings:
                            row = run_once(w, s, Path(tmp), late=load == "late")
                            results.setdefault(str(load), {}).setdefault(w, {}).setdefault(
                                s, []
                            ).append(row)
                            print(f"load {load} round {r} {w:<10} {s:<14} {row}", flush=True)
            finally:
                stop(busy)
    return results


def score(rows: list[dict], workload: str) -> float:
    """Seconds per run (lower is better); for the bench, seconds per image."""
    if workload == "resnet32":
        return 1.0 / statistics.median(r["images_per_s"] for r in rows)
    return statistics.median(r["wall_s"] for r in rows)


def table(results: dict, settings: list[str]) -> str:
    head = f"{'load':>4}  {'workload':<10}" + "".join(f"{s:>22}" for s in settings)
    lines = [head, "-" * len(head)]
    for load, by_workload in results.items():
        for w, by_setting in by_workload.items():
            scores = {s: score(rows, w) for s, rows in by_setting.items()}
            best = min(scores.values())
            cells = []
            for s in settings:
                rows = by_setting[s]
                threads = rows[-1].get("threads")
                if rows[-1].get("threads_last", threads) != threads:
                    threads = f"{threads}->{rows[-1]['threads_last']}"
                if w == "resnet32":
                    value = f"{statistics.median(r['images_per_s'] for r in rows):.1f} img/s"
                else:
                    value = f"{scores[s]:.1f} s"
                cells.append(f"{value} x{scores[s] / best:.2f} ({threads}t)")
            lines.append(f"{load:>4}  {w:<10}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--loads", default="0,1,2", help="busy neighbour processes, e.g. 0,1,2, or late"
    )
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--settings", default="default,1,2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", metavar="FILE", help="also write every run as JSON")
    args = parser.parse_args()
    settings = args.settings.split(",")
    results = measure(args.loads.split(","), args.workloads.split(","), settings, args.rounds)
    text = table(results, settings)
    print(f"\n{os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} in this process's affinity")
    print(text)
    if args.json:
        meta = {
            "date": time.strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)),
            "rounds": args.rounds,
            "settings": settings,
        }
        Path(args.json).write_text(json.dumps({**meta, "runs": results}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
