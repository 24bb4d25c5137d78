"""``ktg search``: an Optuna study over the graph.

The search space, from the spec's ``search:`` section:

* every edge of the N x N matrix (the diagonal is the labels edge) takes a gate from
  ``search.gates``, unless ``search.edges`` gives that edge its own choices or fixes it to the
  gate the spec writes;
* each node listed in ``search.models`` takes one of its model choices (others keep theirs);
* each ``search.params`` entry is a number set at a key path of the spec.

A trial is turned into a concrete spec (stored with the trial, exported with ``--export``),
checked like any spec, and trained by the same Trainer as ``ktg train``; every epoch reports
the objective to the pruner. Studies live in Optuna storages: a journal file by default, or any
storage URL (sqlite, PostgreSQL, MySQL) shared by workers on many machines.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import KtgRuntimeError, SpecError, UsageError, format_path
from .graph import GraphReport, edge_matrix_view, spec_edges
from .registry import PRUNERS, SAMPLERS
from .spec.api import inspect_data, spec_default
from .spec.overrides import parse_path, set_path
from .spec.schema import LABELS, GateRef, Spec

HOST = platform.node()


# --------------------------------------------------------------------------- search space


class SearchSpace:
    def __init__(self, spec: Spec) -> None:
        if spec.search is None:
            raise UsageError(f"{spec.name}: the spec has no 'search:' section to search")
        self.spec = spec
        self.search = spec.search
        self.names = spec.node_names
        written, _ = spec_edges(spec)
        self.written = {(e.receiver, e.sender): e for e in written}
        overrides = {(c.to, c.from_): c for c in self.search.edges}
        self.edges: list[tuple[str, str, list[GateRef] | None]] = []  # None: fixed
        for receiver in self.names:
            if spec.nodes[receiver].frozen:
                continue  # a declared teacher never learns: its edges stay as written
            for sender in [LABELS, *[n for n in self.names if n != receiver]]:
                choice = overrides.get((receiver, sender))
                if choice is not None and choice.fixed:
                    self.edges.append((receiver, sender, None))
                elif choice is not None and choice.gates:
                    self.edges.append((receiver, sender, list(choice.gates)))
                else:
                    self.edges.append((receiver, sender, list(self.search.gates)))

    @staticmethod
    def edge_key(receiver: str, sender: str) -> str:
        return f"gate:{receiver}<-{sender}"

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample one graph: {param name: choice}. Choices are strings (Optuna stores them)."""
        sampled: dict[str, Any] = {}
        for receiver, sender, choices in self.edges:
            if choices is None:
                continue
            key = self.edge_key(receiver, sender)
            sampled[key] = trial.suggest_categorical(key, [str(g) for g in choices])
        for node, models in sorted(self.search.models.items()):
            key = f"model:{node}"
            sampled[key] = trial.suggest_categorical(key, [str(m) for m in models])
        for p in self.search.params:
            key = f"param:{p.path}"
            if p.integer:
                sampled[key] = trial.suggest_int(
                    key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
                )
            else:
                sampled[key] = trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)
        return sampled

    def concrete(self, sampled: dict[str, Any], note: str = "") -> dict[str, Any]:
        """The plain spec data of a sampled graph (no search section)."""
        base = self.spec
        data = dict(base.raw)
        data.pop("search", None)
        data.pop("gate_matrix", None)
        data.pop("edges", None)
        gates: dict[tuple[str, str], Any] = {}
        for receiver, sender, choices in self.edges:
            if choices is None:
                written = self.written.get((receiver, sender))
                gates[(receiver, sender)] = written.gate if written else GateRef(type="cutoff")
            else:
                by_text = {str(g): g for g in choices}
                gates[(receiver, sender)] = by_text[sampled[self.edge_key(receiver, sender)]]
        for (receiver, sender), e in self.written.items():  # edges into declared teachers
            gates.setdefault((receiver, sender), e.gate)
        edges = []
        for receiver in self.names:
            for sender in [LABELS, *self.names]:
                gate = gates.get((receiver, sender))
                if gate is None or gate.type == "cutoff":
                    continue  # an edge not written is cut off
                edge: dict[str, Any] = {"to": receiver, "from": sender, "gate": gate.model_dump()}
                written = self.written.get((receiver, sender))
                raw_loss = self._written_loss(written.path) if written else None
                if raw_loss is not None:
                    edge["loss"] = raw_loss
                edges.append(edge)
        data["edges"] = edges
        nodes = {k: dict(v) for k, v in data["nodes"].items()}
        for node, models in self.search.models.items():
            model_by_text = {str(m): m for m in models}
            nodes[node]["model"] = model_by_text[sampled[f"model:{node}"]].model_dump()
        data["nodes"] = nodes
        for p in self.search.params:
            data = set_path(data, parse_path(p.path), sampled[f"param:{p.path}"], spec_default)
        if note:
            data["description"] = note
        return data

    def _written_loss(self, path: tuple[Any, ...]) -> Any:
        """The loss written on an edge of the base spec's edge list, if any."""
        if path and path[0] == "edges":
            edge = (self.spec.raw.get("edges") or [])[path[1]]
            if isinstance(edge, dict):
                return edge.get("loss")
        return None


def spec_from_data(data: dict[str, Any]) -> tuple[Spec | None, list[str]]:
    spec, _, issues = inspect_data(data)
    errors = [
        f"{format_path(i.path)}: {i.message}" + (f" ({i.hint})" if i.hint else "")
        for i in issues
        if i.is_error
    ]
    return (spec if not errors else None), errors


# --------------------------------------------------------------------------- storage


def default_storage(spec: Spec) -> Path:
    return Path(spec.train.out_dir) / spec.name / "search" / "study.journal"


_TABLE_RACES = ("already exists", "UNIQUE constraint", "database is locked", "Duplicate entry")


def open_storage(url: str) -> Any:
    """An Optuna storage from a URL (sqlite:///..., postgresql://..., mysql://...) or a
    journal file path. Fails with a clear message if it cannot be reached."""
    import optuna

    if "://" not in url:
        return _journal(url)
    if url.rstrip("/") in ("sqlite:", "sqlite://") or url.endswith(":memory:"):
        raise KtgRuntimeError(
            f"--storage {url}: an in-memory database dies with this process "
            "and cannot be shared; name a file, e.g. sqlite:///study.db"
        )
    import warnings

    callback_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    last: Exception | None = None
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if callback_cls is not None:  # a trial whose worker died is queued again
                    return optuna.storages.RDBStorage(
                        url,
                        heartbeat_interval=30,
                        grace_period=120,
                        heartbeat_stale_trial_callback=callback_cls(max_retry=2),
                    )
                retry = optuna.storages.RetryFailedTrialCallback(max_retry=2)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=30, grace_period=120, failed_trial_callback=retry
                )
        except Exception as exc:  # a driver, network or URL problem: all end here
            last = exc
            # Workers starting together race to create the tables: try again shortly.
            if not any(race in str(exc) for race in _TABLE_RACES):
                break
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
    text = str(last).strip()
    first = text.splitlines()[0] if text else type(last).__name__
    raise KtgRuntimeError(f"cannot open the study storage {url!r}: {first}")


def _journal(url: str) -> Any:
    """A journal file storage; the file must be a journal (or new)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    path = Path(url)
    if path.is_dir():
        raise KtgRuntimeError(f"--storage {url} is a folder; name a journal file in it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KtgRuntimeError(
            f"cannot create the folder of --storage {url}: {exc.strerror or exc}"
        ) from None
    if path.exists() and path.stat().st_size:
        with path.open("rb") as f:
            head = f.read(1)
        if head != b"{":  # every journal line is a JSON object
            raise KtgRuntimeError(
                f"--storage {url} is not an Optuna journal file; name a new "
                "file or an existing journal"
            )
    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:  # an unreadable or damaged journal
        raise KtgRuntimeError(f"cannot read the study journal {url}: {exc}") from None


def open_study(spec: Spec, storage: Any, name: str, seed: int | None) -> Any:
    import optuna

    assert spec.search is not None
    sampler = SAMPLERS.get(spec.search.sampler.type).build(spec.search.sampler.args, seed=seed)
    pruner = PRUNERS.get(spec.search.pruner.type).build(
        spec.search.pruner.args, epochs=spec.train.epochs
    )
    try:
        return optuna.create_study(  # may read a journal: a damaged one fails here
            storage=storage,
            study_name=name,
            direction=direction(spec.search.objective),
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
    except ValueError as exc:  # e.g. an existing study with another direction
        raise KtgRuntimeError(f"study '{name}': {exc}") from None
    except Exception as exc:
        raise KtgRuntimeError(f"cannot open study '{name}': {type(exc).__name__}: {exc}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_trials(study: Any) -> list[int]:
    """Trials left RUNNING by a worker of this host that no longer runs (killed): marked failed
    and queued again, so the study stays consistent. Storages with heartbeats do this
    themselves."""
    from optuna.trial import TrialState

    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
        if host == HOST and isinstance(pid, int) and pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(Exception):  # another worker may have done it first
                study._storage.set_trial_user_attr(t._trial_id, "fail_reason", f"worker {pid} died")
                study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                study.enqueue_trial(t.params, skip_if_exists=False)
                reaped.append(t.number)
    return reaped


# --------------------------------------------------------------------------- objective


class Objective:
    def __init__(self, space: SearchSpace, study_name: str, runs: Path, quiet: bool = True) -> None:
        self.space = space
        self.study_name = study_name
        self.runs = runs
        self.quiet = quiet
        assert space.spec.search is not None
        self.goal = space.spec.search.objective
        self.node = self.goal.node or space.names[0]
        self.stop_requested = False  # Ctrl-C seen by a trial that still completed

    def __call__(self, trial: Any) -> float:
        import optuna

        from .engine.trainer import Trainer

        trial.set_user_attr("host", HOST)
        trial.set_user_attr("pid", os.getpid())
        try:
            sampled = self.space.suggest(trial)
        except ValueError as exc:  # the sampler cannot handle this space at all
            if "dynamic value space" in str(exc):
                raise KtgRuntimeError(
                    f"study '{self.study_name}' was started with other choices for one of its "
                    "parameters; a changed search space needs a new study: --study NEW_NAME"
                ) from None
            raise KtgRuntimeError(f"the sampler cannot sample this search space: {exc}") from None
        note = f"trial {trial.number} of study '{self.study_name}' (ktg search)"
        data = self.space.concrete(sampled, note)
        trial.set_user_attr("spec", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        spec, errors = spec_from_data(data)
        if spec is None:
            return self._fail(
                trial, "the sampled graph is not a valid spec: " + "; ".join(errors[:3])
            )
        run_dir = self.runs / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        metric = self.goal.metric
        values: list[float] = []

        def report(epoch: int, rows: dict[str, dict[str, Any]]) -> None:
            value = rows[self.node].get(metric)
            if value is None:
                return  # no evaluation this epoch
            values.append(float(value))
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch + 1}")

        trainer = Trainer(spec, run_dir, progress=not self.quiet, on_epoch=report)
        try:
            trainer.setup()
            result = trainer.train()
        except optuna.TrialPruned:
            raise
        except (KtgRuntimeError, SpecError) as exc:
            return self._fail(trial, str(exc))
        except Exception as exc:  # out of memory, a plugin's bug: this trial fails, not the study
            text = str(exc).strip()
            return self._fail(
                trial, f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"
            )
        finally:
            trainer.cleanup()
            self.stop_requested = self.stop_requested or trainer.stop_requested
            _release_memory()
        if result.interrupted:
            trial.set_user_attr("fail_reason", "interrupted")
            raise KeyboardInterrupt
        if not values:
            return self._fail(trial, f"node '{self.node}' reported no {metric}")
        if self.goal.reduce == "last":
            return values[-1]
        return max(values) if direction(self.goal) == "maximize" else min(values)

    @staticmethod
    def _fail(trial: Any, reason: str) -> float:
        trial.set_user_attr("fail_reason", reason)
        raise TrialFailed(reason)


def direction(goal: Any) -> Literal["maximize", "minimize"]:
    """maximize or minimize: as written, else maximize accuracies and minimize losses."""
    if goal.direction is not None:
        chosen: Literal["maximize", "minimize"] = goal.direction
        return chosen
    return "minimize" if goal.metric.endswith("loss") else "maximize"


def _release_memory() -> None:
    import gc

    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # a trial that ran out of memory must not starve the next


class TrialFailed(Exception):
    """A trial that cannot produce a value (recorded as FAIL with its reason)."""


# --------------------------------------------------------------------------- summary, export


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
            tspec, _ = spec_from_data(yaml.safe_load(text))
            if tspec is not None:
                lines.extend(_matrix_lines(tspec))
        numbers = {k[len("param:") :]: v for k, v in t.params.items() if k.startswith("param:")}
        if numbers:
            lines.append("  " + ", ".join(f"{k} = {v:.4g}" for k, v in numbers.items()))
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if failed:
        lines.append("")
        lines.append("failed trials:")
        for t in failed[-top:]:
            lines.append(f"  trial {t.number}: {t.user_attrs.get('fail_reason', 'unknown')}")
    return "\n".join(lines)


_SHORT = {
    "through": "thru",
    "cutoff": "-",
    "positive_linear": "pos",
    "negative_linear": "neg",
    "correct": "corr",
}


def _matrix_lines(spec: Spec) -> list[str]:
    edges, _ = spec_edges(spec)
    table = edge_matrix_view(spec, edges)
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


# --------------------------------------------------------------------------- the command


def search_command(spec: Spec, report: GraphReport, args: argparse.Namespace) -> int:
    import optuna

    if spec.search is None:
        raise UsageError(f"{args.spec} has no 'search:' section")
    storage_url = args.storage or str(default_storage(spec))
    study_name = args.study or spec.name
    storage = open_storage(storage_url)
    if not args.summary and not args.export:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.export or args.summary:
        study = _load_study(storage, study_name, storage_url)
        if args.summary:
            print(format_summary(study, spec, args.top))
        if args.export:
            from .atomic import write_text_atomic

            trial, text = trial_spec(study, args.trial)
            tspec, errors = spec_from_data(yaml.safe_load(text))
            if tspec is None:
                raise KtgRuntimeError(
                    f"trial {trial.number}'s spec no longer validates:\n" + "\n".join(errors)
                )
            value = f" (value {trial.value:.4f})" if trial.value is not None else ""
            head = (
                f"# yaml-language-server: $schema=https://ktg.dev/schemas/ktg-spec.schema.json"
                f"\n# Exported by ktg search: trial {trial.number} of study "
                f"'{study_name}'{value}.\n"
            )
            write_text_atomic(Path(args.export), head + text)
            print(f"wrote {args.export} (trial {trial.number}{value})")
        return 0
    return _optimize(spec, storage, storage_url, study_name, args)


def _load_study(storage: Any, name: str, url: str) -> Any:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise KtgRuntimeError(f"no study '{name}' in {url}; run `ktg search SPEC` first") from None


def _optimize(spec: Spec, storage: Any, url: str, name: str, args: argparse.Namespace) -> int:
    import optuna

    assert spec.search is not None
    space = SearchSpace(spec)
    probe = open_study(spec, storage, name, seed=None)
    reaped = reap_dead_trials(probe)
    if reaped:
        print(
            f"ktg: trials {reaped} were left running by a worker that died: marked failed "
            "and queued again",
            file=sys.stderr,
        )
    total = spec.search.trials
    done = len(counted_trials(probe))
    remaining = None if total is None else max(total - done, 0)
    mine = args.trials if args.trials is not None else remaining
    if mine is not None and remaining is not None:
        mine = min(mine, remaining)
    if mine == 0:
        print(f"study '{name}' already has {done} finished trials (search.trials: {total})")
        print(format_summary(probe, spec, args.top))
        return 0
    jobs = max(1, args.jobs)
    procs: list[subprocess.Popen[bytes]] = []
    share = mine
    if jobs > 1:
        share = None if mine is None else math.ceil(mine / jobs)
        procs = _spawn_workers(args, url, name, jobs - 1, share)
    seed = (spec.seed * 1_000_003 + len(probe.trials) * 7919 + os.getpid()) % 2**31
    study = open_study(spec, storage, name, seed=seed)
    objective = Objective(space, name, study_runs(study, spec, name))

    def enough(st: Any, _trial: Any) -> None:
        if objective.stop_requested or (total is not None and len(counted_trials(st)) >= total):
            st.stop()

    callbacks: list[Any] = [_print_trial, enough]
    print(
        f"ktg: study '{name}' in {url}: {done} trials done, this worker runs up to "
        f"{share if share is not None else 'unlimited'}"
        + (f" (+{jobs - 1} worker processes)" if procs else ""),
        file=sys.stderr,
    )
    # Optuna logs every failed trial with a traceback; each trial's line (with its reason) is
    # printed by _print_trial instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study.optimize(
            objective,
            n_trials=share,
            timeout=spec.search.timeout,
            catch=(TrialFailed,),
            callbacks=callbacks,
        )
    except KeyboardInterrupt:
        print(
            "ktg: search interrupted; the running trial is marked failed. Run the same "
            "command again to continue the study.",
            file=sys.stderr,
        )
        _stop(procs)
        return 130
    if objective.stop_requested:
        print(
            "ktg: search stopped after its trial finished. Run the same command again to "
            "continue the study.",
            file=sys.stderr,
        )
        _stop(procs)
        return 130
    code = 0
    for p in procs:
        code = max(code, p.wait())
    print(format_summary(study, spec, args.top))
    if not ranked(study):
        print(
            f"ktg: no trial of study '{name}' completed; the reasons are listed above",
            file=sys.stderr,
        )
        return 1
    return 1 if code != 0 else 0


def _spawn_workers(
    args: argparse.Namespace, url: str, name: str, count: int, share: int | None
) -> list[subprocess.Popen[bytes]]:
    cmd = [
        sys.executable,
        "-m",
        "ktg_dsl.cli",
        "search",
        str(args.spec),
        "--storage",
        url,
        "--study",
        name,
    ]
    if share is not None:
        cmd += ["--trials", str(share)]
    for p in args.plugin:
        cmd += ["--plugin", p]
    for s in args.set:
        cmd += ["--set", s]
    env = dict(os.environ)
    threads = max(1, (os.cpu_count() or 1) // (count + 1))
    env["OMP_NUM_THREADS"] = str(threads)  # the cores are shared out between the workers
    import torch

    torch.set_num_threads(threads)  # this process trains trials too
    procs = []
    for _ in range(count):
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
        time.sleep(0.2)  # stagger start-up: different seeds, less contention on the storage
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    import signal

    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGINT)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=60)


def _print_trial(study: Any, trial: Any) -> None:
    reason = trial.user_attrs.get("fail_reason")
    value = f"{trial.value:.4f}" if trial.value is not None else "-"
    extra = f" ({reason})" if reason and trial.state.name == "FAIL" else ""
    print(
        f"trial {trial.number}: {trial.state.name.lower()} value {value}{extra}",
        file=sys.stderr,
        flush=True,
    )
