"""What a search's page shows, read from its Optuna storage: the trials (state, objective,
choices), the best ones' graphs, and per choice (a gate on an edge, a model on a node) how
the trials that made it did."""

from __future__ import annotations

import contextlib
import statistics
import sys
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
    """The study ``name`` of the storage at ``url`` (the only study when not named). Read
    only: a journal is read as it is (a record cut short at its end, one a worker is writing
    now, left out), and a database is opened only when it holds Optuna's tables (opening
    another would add them)."""
    import tempfile

    from ..search.storage import open_storage, route_optuna_logging

    route_optuna_logging()
    if "://" in url:
        _check_database(url)
        return _read_study(open_storage(url), url, name)
    if not Path(url).is_file():
        raise NotAReport(f"{url}: no such search journal")
    with tempfile.TemporaryDirectory(prefix="ktg-report-") as folder:
        copy = Path(folder) / "study.journal"
        copy.write_bytes(_journal_records(url))
        try:
            return _read_study(open_storage(str(copy)), url, name)
        except KtgRuntimeError as exc:  # said of the journal, not of the copy read
            raise KtgRuntimeError(str(exc).replace(str(copy), url)) from None


def _journal_records(url: str) -> bytes:
    """The whole records of the journal file ``url``, read without changing it."""
    from ..bounded import ReadRefused, read_bytes_capped
    from ..search.journal import JOURNAL_LIMIT, is_record, mend

    try:
        data = read_bytes_capped(url, JOURNAL_LIMIT, "the study journal")
    except ReadRefused as exc:
        raise NotAReport(str(exc)) from None
    except OSError as exc:
        raise NotAReport(f"cannot read the search journal {url}: {exc.strerror or exc}") from None
    if not data.strip():
        raise NotAReport(f"{url} holds no study yet (the journal is empty)")
    if not is_record(data.split(b"\n", 1)[0]):
        raise NotAReport(
            f"{url} is not an Optuna journal file (its first line is not a study record); "
            "give the journal `ktg search` writes (runs/<name>/search/study.journal)"
        )
    mended = mend(data, url)
    for note in mended.notes:  # what a search would mend in the file, done to what is read
        print(
            f"ktg: warning: {note}, in what the page reads (a search may be writing that "
            "record now); the file itself is not changed",
            file=sys.stderr,
        )
    return mended.data


def _check_database(url: str) -> None:
    """A sqlite URL: a file that exists and holds Optuna's tables, checked read-only."""
    import sqlite3

    if not url.startswith("sqlite:"):
        return  # a database server: Optuna's driver says what is wrong
    database = url[len("sqlite:///") :].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    if not database or database == ":memory:":
        raise NotAReport(f"{url} names no database file; give one, e.g. sqlite:///ktg.db")
    file = Path(database)
    if file.is_dir():
        raise NotAReport(f"{url}: {database} is a folder, not a database file")
    if not file.is_file():  # opening would create it
        raise NotAReport(f"{url}: no such database file ({database})")
    try:
        with contextlib.closing(
            sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise NotAReport(f"{url}: {database} is not a SQLite database ({exc})") from None
    if "studies" not in tables:
        raise NotAReport(
            f"{url}: {database} holds no Optuna study (no 'studies' table): not the database "
            "of a `ktg search --storage`"
        )


def _read_study(storage: Any, url: str, name: str | None) -> SearchData:
    import optuna

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
        recorded = json.loads(_text(study.user_attrs.get(SPEC_ATTR)) or "{}")
        goal = (recorded.get("search") or {}).get("objective") or {}
        metric = f"{goal.get('node', '')} {goal.get('metric', metric)}".strip()
    except (ValueError, AttributeError, TypeError, RecursionError):
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
        spec_text=_text(t.user_attrs.get("spec")),
        run_dir=_text(t.user_attrs.get("run_dir")) or None,
        reason=_text(t.user_attrs.get("fail_reason")) or "",
    )


def _text(value: Any) -> str | None:
    """A trial's recorded text (its spec, run folder, why it failed); None for anything else
    (a journal edited by hand, or written by another tool)."""
    return value if isinstance(value, str) else None


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
