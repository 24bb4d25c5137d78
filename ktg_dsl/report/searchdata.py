"""What a search's page shows, read from its Optuna storage: the trials (state, objective,
choices), the best ones' graphs, and per choice (a gate on an edge, a model on a node) how
the trials that made it did."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KtgRuntimeError
from .rundata import NotAReport

CHOICES = ("gate:", "model:")  # the categorical choices a per-edge summary is made of


@dataclass
class Trial:
    number: int
    state: str  # complete, pruned, fail, running, waiting
    value: float | None  # the objective (complete), or the last reported value (pruned)
    seconds: float | None
    params: dict[str, Any]
    spec_text: str | None
    run_dir: str | None
    reason: str = ""


@dataclass
class SearchData:
    name: str
    storage: str
    direction: str  # maximize or minimize
    metric: str
    trials: list[Trial] = field(default_factory=list)

    @property
    def complete(self) -> list[Trial]:
        return [t for t in self.trials if t.state == "complete" and t.value is not None]

    def best(self, top: int) -> list[Trial]:
        done = self.complete
        return sorted(done, key=lambda t: t.value or 0.0, reverse=self.direction == "maximize")[
            :top
        ]


def open_search(url: str, name: str | None) -> SearchData:
    """The study ``name`` of the storage at ``url`` (the only study when not named)."""
    import optuna

    from ..search.storage import open_storage, route_optuna_logging

    if "://" not in url and not Path(url).is_file():
        raise NotAReport(f"{url}: no such search journal")
    database = url.split(":///", 1)[1] if url.startswith("sqlite:///") else None
    if database is not None and not Path(database).is_file():  # opening would create it
        raise NotAReport(f"{url}: no such database file ({database})")
    route_optuna_logging()
    storage = open_storage(url)
    try:
        names = optuna.get_all_study_names(storage)
    except Exception as exc:  # a storage Optuna cannot read: said in its words
        raise KtgRuntimeError(f"cannot read the studies of {url}: {exc}") from None
    if not names:
        raise NotAReport(f"{url} holds no study yet")
    if name is None and len(names) > 1:
        raise NotAReport(
            f"{url} holds {len(names)} studies ({', '.join(names)}); name one: --study"
        )
    chosen = name or names[0]
    if chosen not in names:
        raise NotAReport(f"{url} has no study {chosen!r}; it has {', '.join(names)}")
    study = optuna.load_study(study_name=chosen, storage=storage)
    return _search_data(study, url)


def _search_data(study: Any, url: str) -> SearchData:
    import json

    from ..search.key import SPEC_ATTR

    trials = [_trial(t) for t in study.get_trials(deepcopy=False)]
    for t in trials:
        t.run_dir = _found(t.run_dir, url)
    metric = "objective"
    try:  # the spec the study was started with (search/key records it): its objective
        recorded = json.loads(study.user_attrs.get(SPEC_ATTR) or "{}")
        goal = (recorded.get("search") or {}).get("objective") or {}
        metric = f"{goal.get('node', '')} {goal.get('metric', metric)}".strip()
    except (ValueError, AttributeError):
        pass
    return SearchData(study.study_name, url, study.direction.name.lower(), metric, trials)


def _found(run_dir: str | None, url: str) -> str | None:
    """A trial's run folder as recorded (relative to where the search ran), or, when that is
    not here, beside the journal where a search puts it by default
    (``<out_dir>/<name>/search/<study>/trial-N`` beside ``search/study.journal``)."""
    if not run_dir or Path(run_dir).is_dir() or "://" in url:
        return run_dir
    beside = Path(url).parent / Path(run_dir).parent.name / Path(run_dir).name
    return str(beside) if beside.is_dir() else run_dir


def _trial(t: Any) -> Trial:
    value = t.value
    if value is None and t.intermediate_values:  # pruned: where it stood when stopped
        value = t.intermediate_values[max(t.intermediate_values)]
    seconds = None
    if t.datetime_start is not None and t.datetime_complete is not None:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds()
    return Trial(
        number=t.number,
        state=t.state.name.lower(),
        value=value,
        seconds=seconds,
        params=dict(t.params),
        spec_text=t.user_attrs.get("spec"),
        run_dir=t.user_attrs.get("run_dir"),
        reason=t.user_attrs.get("fail_reason", ""),
    )


@dataclass
class ChoiceRow:
    param: str  # gate:<receiver><-<sender> or model:<node>
    by_choice: dict[str, list[float]]  # choice -> objectives of the complete trials

    def mean(self, choice: str) -> float | None:
        values = self.by_choice.get(choice) or []
        return statistics.fmean(values) if values else None


def choice_summary(data: SearchData) -> tuple[list[str], list[ChoiceRow]]:
    """Every choice seen, and per gate or model parameter the objectives of the complete
    trials that made each choice."""
    rows: dict[str, ChoiceRow] = {}
    seen: list[str] = []
    for t in data.complete:
        for param, choice in t.params.items():
            if not param.startswith(CHOICES):
                continue
            text = str(choice)
            row = rows.setdefault(param, ChoiceRow(param, {}))
            row.by_choice.setdefault(text, []).append(float(t.value or 0.0))
            if text not in seen:
                seen.append(text)
    return seen, [rows[k] for k in sorted(rows, key=lambda p: (not p.startswith("gate:"), p))]
