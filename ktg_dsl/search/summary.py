"""What a study holds, in the user's terms: the trials that count, the best ones with their
graphs, failures with their reasons, a trial's spec for export, and where trials run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import KtgRuntimeError
from ..graph import GraphReport
from ..spec.schema import Spec
from .space import check_sampled


def counted_trials(study: Any) -> list[Any]:
    """Finished trials that count towards ``search.trials``: an interrupted trial, or one
    whose worker died (it was queued again), does not."""
    from optuna.trial import TrialState

    finished = study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    return [t for t in finished if not _not_run(t.user_attrs.get("fail_reason", ""))]


def _not_run(reason: str) -> bool:
    return reason == "interrupted" or reason.startswith("worker ")


def study_runs(study: Any, spec: Spec, name: str) -> Path:
    """Where this study's trial directories go: ``<out_dir>/<name>/search/<study>``, or with a
    suffix when that folder belongs to another study (another storage, or a deleted one). The
    choice is stored with the study so that every worker uses it."""
    chosen = study.user_attrs.get("runs")
    if chosen:
        return Path(chosen)
    base = Path(spec.train.out_dir) / spec.name / "search" / name
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{name}-{n}")
    study.set_user_attr("runs", str(candidate))
    return Path(study.user_attrs.get("runs", str(candidate)))


def ranked(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    maximize = study.direction.name == "MAXIMIZE"
    return sorted(done, key=lambda t: t.value, reverse=maximize)


def trial_spec(study: Any, number: int | None) -> tuple[Any, str]:
    if number is None:
        best = ranked(study)
        if not best:
            raise KtgRuntimeError(f"study '{study.study_name}' has no completed trial yet")
        trial = best[0]
    else:
        found = [t for t in study.get_trials(deepcopy=False) if t.number == number]
        if not found:
            raise KtgRuntimeError(f"study '{study.study_name}' has no trial {number}")
        trial = found[0]
    text = trial.user_attrs.get("spec")
    if not text:
        raise KtgRuntimeError(
            f"trial {trial.number} holds no spec (it failed before "
            "sampling, or it was made by another tool)"
        )
    return trial, text


def format_summary(study: Any, spec: Spec, top: int) -> str:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    lines = [
        f"study '{study.study_name}': {len(trials)} trials ("
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        + ")"
    ]
    for t in ranked(study)[:top]:
        lines.append("")
        lines.append(
            f"trial {t.number}: {spec.search.objective.metric if spec.search else ''}"
            f" = {t.value:.4f}  ({t.user_attrs.get('run_dir', '')})"
        )
        text = t.user_attrs.get("spec")
        if text:
            checked = check_sampled(yaml.safe_load(text))
            if checked.ok and checked.spec is not None and checked.graph is not None:
                lines.extend(_matrix_lines(checked.spec, checked.graph))
        numbers = {k[len("param:") :]: v for k, v in t.params.items() if k.startswith("param:")}
        if numbers:
            lines.append("  " + ", ".join(f"{k} = {v:.4g}" for k, v in numbers.items()))
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if failed:
        lines += ["", f"failed trials: {len(failed)}, by reason", *_failure_lines(failed, top)]
    return "\n".join(lines)


def _failure_lines(failed: list[Any], top: int) -> list[str]:
    """One line per distinct reason, the commonest first, with the trials that gave it: the
    same lines whatever order the trials ran in."""
    by_reason: dict[str, list[int]] = {}
    for t in sorted(failed, key=lambda t: t.number):
        by_reason.setdefault(t.user_attrs.get("fail_reason", "unknown"), []).append(t.number)
    ordered = sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    lines = []
    for reason, numbers in ordered[:top]:
        shown = ", ".join(map(str, numbers[:10])) + (", ..." if len(numbers) > 10 else "")
        lines.append(f"  {len(numbers)} x {reason} (trials {shown})")
    if len(ordered) > top:
        lines.append(f"  ... and {len(ordered) - top} other reasons (--top to see more)")
    return lines


_SHORT = {
    "through": "thru",
    "cutoff": "-",
    "positive_linear": "pos",
    "negative_linear": "neg",
    "correct": "corr",
}


def _matrix_lines(spec: Spec, graph: GraphReport) -> list[str]:
    table = graph.gate_table()
    names = spec.node_names
    cells = [[_SHORT.get(c, c) for c in row] for row in table]
    width = max([len(n) for n in names] + [len(c) for row in cells for c in row] + [4])
    head = " " * width + "".join(f"  {n:>{width}}" for n in names)
    lines = ["  rows receive from columns; the diagonal is the labels edge", "  " + head]
    for name, row in zip(names, cells, strict=True):
        model = spec.nodes[name].model
        lines.append(
            f"  {name.ljust(width)}  " + "  ".join(c.rjust(width) for c in row) + f"   [{model}]"
        )
    return lines
