"""Running a study's runs: one after the other in this process, or side by side in ``processes``
worker processes, each with its share of the cores (cores // processes, at least 1: the most
threads its ``train.threads`` may use, ``KTG_CPU_SHARE``) and,
on a machine with GPUs, its own GPU (round robin, through CUDA_VISIBLE_DEVICES).

A run with a ``last.pt`` is resumed; a folder without one (a run killed before its first
checkpoint) holds nothing to resume and is started again. Workers start from a ``-c``
bootstrap that drops the working folder from ``sys.path`` (a ``yaml.py`` there is never
imported) and puts first the folder this ``ktg_dsl`` came from. They run in their own session:
Ctrl-C reaches them once, from this process, which asks each to stop after its batch and save;
a worker whose parent dies (its stdin closes) does the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Literal

from ..bounded import MIB, read_tail

Status = Literal["done", "failed", "interrupted"]
OUTCOME = "ktg-study-outcome: "  # a worker's last line: this prefix and the outcome as JSON
POLL_S = 0.1
STOP_WAIT_S = 120.0  # how long a worker asked to stop may take to save
LOG_TAIL = MIB  # how much of a worker's log's end is read for its outcome line


@dataclass(frozen=True)
class Job:
    key: str  # the run's path in the study directory
    label: str  # "kd seed 2"
    spec_file: str  # the study's resolved spec (seed 0)
    seed: int
    run_dir: str
    plugins: list[str] = field(default_factory=list)
    log: str | None = None  # a worker's output goes here

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Outcome:
    key: str
    status: Status
    reason: str = ""


OnStart = Callable[[Job], None]
OnEnd = Callable[[Job, Outcome], None]


def run_one(job: Job) -> Outcome:
    """Train (or resume) one run in this process; every failure becomes an outcome."""
    import shutil

    from ..check import check_file
    from ..errors import KtgRuntimeError, SpecError
    from ..run.rundir import LAST, claim_existing, claim_new
    from ..run.session import train_in

    try:
        report = check_file(job.spec_file, [f"seed={job.seed}"])
        if not report.ok or report.spec is None or report.graph is None:
            issues = "; ".join(i.format() for i in report.errors)
            return Outcome(job.key, "failed", f"its spec does not validate: {issues}")
        path = Path(job.run_dir)
        resume = (path / LAST).exists()
        if not resume and path.exists():
            shutil.rmtree(path)  # killed before its first checkpoint: nothing to resume
        spec = report.spec
        run = claim_existing(path) if resume else claim_new(path, spec.train.out_dir, spec.name)
        result = train_in(spec, report.graph, run, resume=resume, progress=False)
    except KeyboardInterrupt:
        return Outcome(job.key, "interrupted")
    except (KtgRuntimeError, SpecError) as exc:
        return Outcome(job.key, "failed", str(exc))
    except Exception as exc:  # out of memory, a plugin's bug: the study goes on
        return Outcome(job.key, "failed", f"{type(exc).__name__}: {exc}")
    if result is not None and result.interrupted:
        return Outcome(job.key, "interrupted")
    return Outcome(job.key, "done")


def run_jobs(jobs: Sequence[Job], processes: int, on_start: OnStart, on_end: OnEnd) -> bool:
    """Run every job; True when stopped by Ctrl-C (or SIGTERM) before the end."""
    if processes <= 1:
        return _in_process(jobs, on_start, on_end)
    return _Pool(processes).run(jobs, on_start, on_end)


def _in_process(jobs: Sequence[Job], on_start: OnStart, on_end: OnEnd) -> bool:
    try:
        for job in jobs:
            on_start(job)
            outcome = run_one(job)
            on_end(job, outcome)
            if outcome.status == "interrupted":
                return True
    except KeyboardInterrupt:
        return True
    return False


def cores() -> int:
    from ..run.threads import usable_cores

    return usable_cores(os.environ)[0]


def worker_command(job: Job) -> list[str]:
    from ..run.workers import worker_command as command

    return command([job.to_json()], job.plugins, entry="ktg_dsl.study.worker:main")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _Pool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.threads = max(1, cores() // processes)
        from ..run.env import visible_gpus  # torch: when a study runs

        self.gpus = visible_gpus()
        self.running: dict[int, tuple[subprocess.Popen[bytes], Job, IO[bytes]]] = {}

    def run(self, jobs: Sequence[Job], on_start: OnStart, on_end: OnEnd) -> bool:
        pending = list(jobs)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            while pending or self.running:
                free = [s for s in range(self.processes) if s not in self.running]
                while pending and free:
                    job = pending.pop(0)
                    on_start(job)
                    self._start(job, free.pop(0))
                self._reap(on_end)
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            self._stop(on_end)
            return True
        finally:
            signal.signal(signal.SIGTERM, previous)
        return False

    def _start(self, job: Job, slot: int) -> None:
        from ..run.threads import SHARE_ENV

        env = dict(os.environ, PYTHONSAFEPATH="1")
        env[SHARE_ENV] = str(self.threads)  # the worker's train.threads stays within it
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        assert job.log is not None
        log = open(job.log, "ab")  # noqa: SIM115 - closed when the worker ends
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {job.label}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            worker_command(job),
            stdin=subprocess.PIPE,  # closes when this process dies: the worker then stops
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C on the terminal reaches it once, through us
        )
        self.running[slot] = (proc, job, log)

    def _reap(self, on_end: OnEnd) -> None:
        for slot, (proc, job, log) in list(self.running.items()):
            if proc.poll() is None:
                continue
            del self.running[slot]
            log.close()
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            on_end(job, read_outcome(job, proc.returncode))

    def _stop(self, on_end: OnEnd) -> None:
        """Ask every worker to stop after its batch and save; wait; kill those that hang."""
        for proc, _, _ in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        end = time.monotonic() + STOP_WAIT_S
        for proc, _, _ in self.running.values():
            try:
                proc.wait(timeout=max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        while self.running:
            self._reap(on_end)


def read_outcome(job: Job, returncode: int) -> Outcome:
    """A worker's outcome: the outcome line of its last attempt's output, or what its exit
    says (with the output's last line)."""
    lines: list[str] = []
    if job.log:
        with contextlib.suppress(OSError):
            lines = read_tail(job.log, LOG_TAIL).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("--- ")]
    lines = lines[starts[-1] + 1 :] if starts else lines
    for line in reversed(lines):
        if line.startswith(OUTCOME):
            with contextlib.suppress(ValueError, TypeError):
                return Outcome(**json.loads(line[len(OUTCOME) :]))
    how = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    tail = next((line.strip() for line in reversed(lines) if line.strip()), "")
    reason = f"the worker process ended with {how}" + (f": {tail}" if tail else "")
    return Outcome(job.key, "failed", reason + (f" (see {job.log})" if job.log else ""))
