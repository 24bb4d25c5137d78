"""Specs x seeds -> runs. A run's identity is its spec's digest (the resolved spec with seed 0:
every default written out, so any change that alters training changes it) and its seed:
``<spec name>-<digest8>/seed-<s>``. A changed spec gets a new folder; the old one is stale."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from ..errors import KtgRuntimeError
from ..graph import GraphReport
from ..spec.schema import Spec
from .manifest import SPEC_FILE, Manifest, StudyDir, StudyEntry, run_key

MAX_SEED = 2**32  # the schema's bound
MAX_SEEDS = 10_000  # seeds in one study: each is a run of every spec
MAX_NAME = 100
GRAPH_MEAN = "graph mean"  # the mean over a spec's trained nodes, seed by seed

RunState = Literal["finished", "resume", "new"]


class StudyMismatch(KtgRuntimeError):
    """The specs cannot be compared in one study (another dataset or split, a name twice)."""


def parse_seeds(text: str) -> list[int]:
    """``5`` -> seeds 0..4; ``0,3,7`` -> those seeds (a trailing comma makes one seed a list:
    ``3,``). ValueError with the reason for an empty, negative, too large or repeated list."""
    text = text.strip()
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            count = int(text)
            if count > MAX_SEEDS:  # before a list of that many is made
                raise OverflowError(count)
            seeds = list(range(count))
    except OverflowError as exc:
        raise ValueError(
            f"--seeds {exc.args[0]:,} is more than a study runs ({MAX_SEEDS:,} seeds at most)"
        ) from None
    except ValueError:
        raise ValueError(f"--seeds takes a count (5) or a list (0,3,7), got {text!r}") from None
    if not seeds:
        raise ValueError("--seeds gives no seed: give a count of 1 or more, or a list")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(
            f"--seeds lists {len(seeds):,} seeds, more than a study runs ({MAX_SEEDS:,} at most)"
        )
    bad = [s for s in seeds if not 0 <= s < MAX_SEED]
    if bad:
        raise ValueError(f"seeds must be 0 .. {MAX_SEED - 1}, got {bad[0]}")
    counts = Counter(seeds)
    repeated = sorted(s for s, n in counts.items() if n > 1)
    if repeated:
        raise ValueError(f"--seeds repeats {', '.join(map(str, repeated))}: each seed once")
    return seeds


def base_spec(spec: Spec) -> Spec:
    """The spec as the study stores it: seed 0 (each run sets its own), the default out_dir
    (the study places its runs itself)."""
    train = spec.train.model_copy(update={"out_dir": "runs"})
    return spec.model_copy(update={"seed": 0, "train": train})


@dataclass(frozen=True)
class StudySpec:
    """A checked spec of the study: its manifest entry and the resolved text its runs train."""

    entry: StudyEntry
    text: str


def describe(file: str | Path, spec: Spec, graph: GraphReport) -> StudySpec:
    """The study's view of a checked spec (imports torch, through the run's resolved spec)."""
    from ..run.state import resolved_spec_text, spec_digest

    text = resolved_spec_text(base_spec(spec))
    data = yaml.safe_load(text)["data"]
    # what the runs' val_top1 measures, in the tables' words: kNN in a self-supervised graph
    split = f"kNN {data['split']}" if spec.self_supervised is not None else data["split"]
    entry = StudyEntry(
        name=spec.name,
        digest=spec_digest(text),
        file=str(Path(file).absolute()),
        dataset=data["dataset"],
        split=split,
        nodes=list(spec.nodes),
        frozen=[n for n in spec.nodes if n in graph.frozen],
    )
    head = "# Written by ktg study: the spec of the runs beside it; each run sets its seed.\n"
    return StudySpec(entry, head + text)


def check_comparable(specs: Sequence[StudySpec]) -> None:
    """One study compares specs on the same data: the same dataset (with its options) and the
    same split, and each spec under its own name."""
    names = [s.entry.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise StudyMismatch(
            f"two specs are named {', '.join(twice)}: a study tells its specs apart by name "
            "(give each its own `name:`)"
        )
    first = specs[0].entry
    odd = [
        s.entry for s in specs if (s.entry.dataset, s.entry.split) != (first.dataset, first.split)
    ]
    if odd:
        lines = "\n".join(
            f"  {e.name} ({e.file}): dataset {_short(e.dataset)}, split {e.split}"
            for e in [first, *odd]
        )
        raise StudyMismatch(
            "these specs train on different data, so their accuracies cannot be compared "
            f"in one study:\n{lines}"
        )


def _short(dataset: object) -> str:
    return yaml.safe_dump(dataset, default_flow_style=True, width=10_000).strip()


def default_name(names: Sequence[str]) -> str:
    """``studies/<name>`` for one spec, ``<a>-vs-<b>-vs-<c>`` for several (shortened when
    long)."""
    joined = "-vs-".join(names)
    if len(joined) <= MAX_NAME:
        return joined
    return f"{names[0]}-and-{len(names) - 1}-more"


@dataclass(frozen=True)
class PlannedRun:
    key: str  # <spec>-<digest8>/seed-<s>: its path in the study directory
    spec: str
    seed: int
    spec_file: Path  # the study's resolved copy of the spec
    path: Path
    state: RunState

    @property
    def label(self) -> str:
        return f"{self.spec} seed {self.seed}"


def plan_runs(study: StudyDir, manifest: Manifest) -> list[PlannedRun]:
    """Every run of the study, spec by spec and seed by seed, with what it needs: nothing
    (finished, recorded in the manifest), resuming (its folder holds last.pt) or training."""
    from ..run.rundir import LAST

    runs = []
    for entry in manifest.specs:
        for seed in manifest.seeds:
            key = run_key(entry.folder, seed)
            path = study.run_path(key)
            state: RunState = "new"
            if key in manifest.finished:
                state = "finished"
            elif (path / LAST).exists():
                state = "resume"
            spec_file = study.path / entry.folder / SPEC_FILE
            runs.append(PlannedRun(key, entry.name, seed, spec_file, path, state))
    return runs


def write_spec_files(study: StudyDir, specs: Sequence[StudySpec]) -> None:
    """Each spec folder's spec.yaml (written once: the folder's name is its digest)."""
    from ..atomic import write_text_atomic

    for s in specs:
        folder = study.path / s.entry.folder
        if not (folder / SPEC_FILE).exists():
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(folder / SPEC_FILE, s.text)


def compared_nodes(baseline: StudyEntry, other: StudyEntry, node: str | None) -> list[str]:
    """Which nodes a comparison of ``other`` against ``baseline`` reads: ``node`` when given;
    else every trained node of the same name in both, in the baseline's order; else the graph
    mean (the mean over each spec's trained nodes, seed by seed)."""
    if node is not None:
        return [node]
    common = [n for n in baseline.trained if n in other.trained]
    return common or [GRAPH_MEAN]
