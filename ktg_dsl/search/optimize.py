"""Running trials of a study in this process: how many this worker takes, the optimisation
loop with its callbacks (a line per trial, stopping when the study has enough), and exporting
a trial's spec."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..atomic import write_text_atomic
from ..errors import KtgRuntimeError
from ..spec.schema import Spec
from .key import check_study_key
from .objective import Objective, TrialFailed
from .space import SearchSpace, check_sampled, error_lines
from .storage import open_study, reap_dead_trials
from .summary import counted_trials, study_runs, trial_spec

Say = Callable[[str], None]


@dataclass(frozen=True)
class TrialPlan:
    done: int  # finished trials that count towards search.trials
    total: int | None  # search.trials
    mine: int | None  # trials this worker runs (None: until the timeout or forever)
    reaped: list[int]  # trials a dead worker had left running, queued again


def plan_trials(
    spec: Spec, storage: Any, name: str, requested: int | None, url: str = "the storage"
) -> TrialPlan:
    """Open (or create) the study, reap dead workers' trials, and count what is left."""
    assert spec.search is not None
    held = _existing(storage, name)  # read only: a refused study's journal stays as it was
    if held is not None:
        check_study_key(held, spec, name, url)  # another spec's trials are not ranked together
    probe = open_study(spec, storage, name, seed=None)
    if held is None:
        check_study_key(probe, spec, name, url)  # a new study records what it is
    reaped = reap_dead_trials(probe)
    total = spec.search.trials
    done = len(counted_trials(probe))
    remaining = None if total is None else max(total - done, 0)
    mine = requested if requested is not None else remaining
    if mine is not None and remaining is not None:
        mine = min(mine, remaining)
    return TrialPlan(done, total, mine, reaped)


def _existing(storage: Any, name: str) -> Any:
    """The study ``name`` if the storage holds it, else None (nothing is written)."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except Exception:  # none (KeyError), or damage that open_study names in words
        return None


def run_trials(spec: Spec, storage: Any, name: str, n_trials: int | None) -> tuple[Any, bool]:
    """Run up to ``n_trials`` trials here; the study, and whether a Ctrl-C asked to stop
    (the trial in progress still completed). KeyboardInterrupt propagates."""

    assert spec.search is not None
    total = spec.search.trials
    probe = open_study(spec, storage, name, seed=None)
    seed = (spec.seed * 1_000_003 + len(probe.trials) * 7919 + os.getpid()) % 2**31
    study = open_study(spec, storage, name, seed=seed)
    objective = Objective(SearchSpace(spec), name, study_runs(study, spec, name))

    def enough(st: Any, _trial: Any) -> None:
        if objective.stop_requested or (total is not None and len(counted_trials(st)) >= total):
            st.stop()

    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=spec.search.timeout,
        catch=(TrialFailed,),
        callbacks=[_print_trial, enough],
    )
    return study, objective.stop_requested


def _print_trial(study: Any, trial: Any) -> None:
    reason = trial.user_attrs.get("fail_reason")
    value = f"{trial.value:.4f}" if trial.value is not None else "-"
    extra = f" ({reason})" if reason and trial.state.name == "FAIL" else ""
    clear = "\r\033[K" if sys.stderr.isatty() else ""  # the trial's live line, if any
    print(
        f"{clear}trial {trial.number}: {trial.state.name.lower()} value {value}{extra}",
        file=sys.stderr,
        flush=True,
    )


def load_study(storage: Any, name: str, url: str) -> Any:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise KtgRuntimeError(f"no study '{name}' in {url}; run `ktg search SPEC` first") from None


# The JSON Schema as this checkout ships it (absent from an installed wheel).
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "ktg-spec.schema.json"


def schema_comment(path: str | Path) -> str:
    """The editor line for a spec written to ``path``: the schema's path relative to it, as
    the shipped specs say it (works offline), when this checkout has the schema; else none
    (docs/guide.md says how to add it)."""
    if not SCHEMA_FILE.is_file():
        return ""
    target = Path(path).resolve().parent
    try:
        relative = Path(os.path.relpath(SCHEMA_FILE, target)).as_posix()
    except ValueError:  # another drive (Windows): no relative path
        return ""
    return f"# yaml-language-server: $schema={relative}\n"


def export_trial(study: Any, number: int | None, path: str | Path) -> str:
    """Write the best trial's (or trial ``number``'s) spec to ``path``; what was written."""
    trial, text = trial_spec(study, number)
    checked = check_sampled(yaml.safe_load(text))
    if not checked.ok:
        raise KtgRuntimeError(
            f"trial {trial.number}'s spec no longer validates:\n" + "\n".join(error_lines(checked))
        )
    value = f" (value {trial.value:.4f})" if trial.value is not None else ""
    head = (
        f"{schema_comment(path)}# Exported by ktg search: trial {trial.number} of study "
        f"'{study.study_name}'{value}.\n"
    )
    write_text_atomic(Path(path), head + text)
    return f"trial {trial.number}{value}"
