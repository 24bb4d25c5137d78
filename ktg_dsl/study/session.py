"""``ktg study`` as library calls: :func:`prepare` (the study directory, its manifest, its runs
and what each needs), :func:`run_study` (train what is left, record each run as it finishes),
:func:`write_outputs` (tables and pictures) and :func:`summary` (the results of a study
directory, without training)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .display import Display, run_line
from .manifest import (
    COMPARISONS_CSV,
    CURVES,
    FINAL,
    RESULTS_CSV,
    RESULTS_JSON,
    RESULTS_MD,
    Manifest,
    StudyDir,
    log_name,
    open_study,
    run_key,
)
from .plan import PlannedRun, StudySpec, plan_runs, write_spec_files
from .results import StudyResults, collect, read_run
from .runner import Job, Outcome, run_jobs


@dataclass
class Prepared:
    study: StudyDir
    manifest: Manifest
    runs: list[PlannedRun]
    stale: list[str]  # folders of earlier versions of the specs, left out
    lost: list[str] = field(default_factory=list)  # recorded as finished, folder gone: again

    @property
    def todo(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.state != "finished"]


def prepare(
    out: str | Path,
    name: str,
    specs: Sequence[StudySpec],
    seeds: Sequence[int],
    *,
    baseline: str | None = None,
    node: str | None = None,
) -> Prepared:
    """Open (or create) the study in ``out`` for ``specs`` x ``seeds`` and hold its lock (a
    second study process in the same folder is refused). Raises NotAStudy for a folder that
    holds anything else; nothing is written before that check."""
    entries = [s.entry for s in specs]
    open_study(out, name, entries, list(seeds))  # refuse before writing anything (the lock)
    study = StudyDir(out)
    study.lock()
    try:
        manifest = open_study(out, name, entries, list(seeds))  # again, now that it is ours
        manifest.baseline, manifest.node = baseline, node
        # a run recorded as finished whose folder is gone (deleted, moved) is trained again
        lost = [
            key
            for key in (run_key(e.folder, seed) for e in entries for seed in seeds)
            if key in manifest.finished and not study.run_path(key).exists()
        ]
        for key in lost:
            del manifest.finished[key]
        write_spec_files(study, specs)
        study.write(manifest)
    except BaseException:
        study.release()
        raise
    runs = plan_runs(study, manifest)
    return Prepared(study, manifest, runs, study.stale(manifest), lost)


@dataclass
class StudyRun:
    """What :func:`run_study` did."""

    done: list[str] = field(default_factory=list)  # run keys finished now
    failed: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    stopped: list[str] = field(default_factory=list)  # labels stopped, resumable
    interrupted: bool = False


def run_study(
    prep: Prepared, *, jobs: int = 1, plugins: Sequence[str] = (), display: Display
) -> StudyRun:
    """Train every run not yet finished (``jobs`` at once), recording each in study.json as
    soon as it finishes. The study's lock is released at the end."""
    study, manifest = prep.study, prep.manifest
    split = manifest.specs[0].split
    work = [
        Job(
            key=r.key,
            label=r.label,
            spec_file=str(r.spec_file),
            seed=r.seed,
            run_dir=str(r.path),
            plugins=list(plugins),
            log=str(study.run_path(log_name(r.key))),
        )
        for r in prep.todo
    ]
    seeds = {r.key: r.seed for r in prep.runs}
    specs = {r.key: r.spec for r in prep.runs}
    outcome = StudyRun()

    def started(job: Job) -> None:
        display.started(job.label)

    def ended(job: Job, result: Outcome) -> None:
        if result.status == "done":
            record = read_run(Path(job.run_dir), specs[job.key], seeds[job.key], job.key)
            study.mark_finished(manifest, job.key, record.seconds)
            outcome.done.append(job.key)
            display.finished(job.label, run_line(record, split))
        elif result.status == "failed":
            outcome.failed.append((job.label, result.reason))
            display.failed_run(job.label, result.reason)
        else:
            outcome.stopped.append(job.label)
            display.stopped(job.label)

    try:
        outcome.interrupted = run_jobs(work, max(1, min(jobs, len(work))), started, ended)
    finally:
        study.release()
    return outcome


def summary(out: str | Path, baseline: str | None = None, node: str | None = None) -> StudyResults:
    """The results of the study in ``out`` (NotAStudy if it is none), from its finished runs;
    the baseline and node of its last ``ktg study`` unless given."""
    study = StudyDir(out)
    manifest = study.read()
    return collect(study, manifest, baseline or manifest.baseline, node or manifest.node)


def results_of(prep: Prepared) -> StudyResults:
    m = prep.manifest
    return collect(prep.study, m, m.baseline, m.node)


def write_outputs(out: str | Path, res: StudyResults, pictures: bool = True) -> list[Path]:
    """results.md, results.csv, results.json (comparisons.csv with two or more specs) and,
    unless ``pictures`` is False, the curves and the final accuracies as SVG and PNG."""
    from ..atomic import write_text_atomic
    from . import tables

    study = StudyDir(out)
    files = {
        RESULTS_MD: tables.markdown(res),
        RESULTS_CSV: tables.summary_csv(res),
        RESULTS_JSON: tables.to_json(res),
    }
    if res.comparisons:
        files[COMPARISONS_CSV] = tables.comparisons_csv(res)
    written = []
    for name, text in files.items():
        write_text_atomic(study.file(name), text)
        written.append(study.file(name))
    if pictures and res.runs:
        from .pictures import draw_curves, draw_final

        written += draw_curves(res, study.file(CURVES))
        written += draw_final(res, study.file(FINAL))
    return written
