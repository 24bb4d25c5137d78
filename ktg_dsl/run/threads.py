"""The CPU: the cores this process may use, how busy they are, and how many threads to compute
with (``train.threads``). With ``run/env.py`` (devices and precision), the only modules that
probe the hardware.

torch's default, one OpenMP thread per core, is many times slower than one thread as soon as
another process runs on the machine: every parallel region waits for the thread whose core the
neighbour holds (measured in docs/performance.md, "Threads"). ``train.threads: auto`` counts
the cores free of other work when a run starts, and a :class:`ThreadGovernor` keeps counting
while a CPU run trains."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ArgumentError

THREADS_ENV = "KTG_THREADS"  # set by --threads: wins over the spec, for workers and ranks too
SHARE_ENV = "KTG_CPU_SHARE"  # set by ktg's launchers: the cores one worker or rank may use
LOAD_WINDOW_S = 0.24  # how long auto watches the machine's load when a run starts
LOAD_SAMPLES = 3  # in slices of this many: a core busy in each slice is taken
IDLE_MARGIN = 0.2  # a core counts as idle from 80% idle on (a neighbour's bursts stall too)


@dataclass(frozen=True)
class ThreadChoice:
    """How many threads a process computes with, and why (for the header and run.json)."""

    count: int
    why: str
    auto: bool = False  # chosen by auto (a governor may change it while training)

    def text(self) -> str:
        return f"{self.count} thread{'s' if self.count != 1 else ''} ({self.why})"


_applied: ThreadChoice | None = None


def apply_threads(setting: int | str = "auto") -> ThreadChoice:
    """Resolve ``train.threads`` (a number, or ``auto``) on this host and set torch's
    intra-op threads to it. ``--threads`` (``KTG_THREADS``) wins, then the spec's number, then
    ``OMP_NUM_THREADS``, then ``auto``; a launcher's share of the cores (``KTG_CPU_SHARE``)
    caps each."""
    global _applied
    choice = choose_threads(setting, os.environ)
    if torch.get_num_threads() != choice.count:
        torch.set_num_threads(choice.count)
    _applied = choice
    return choice


def choose_threads(setting: int | str, environ: dict[str, str] | os._Environ[str]) -> ThreadChoice:
    cores, limit = usable_cores(environ)
    given = environ.get(THREADS_ENV, "").strip()
    if given:
        setting = threads_setting(given, THREADS_ENV)
        if isinstance(setting, int):
            return _capped(setting, f"--threads {setting}", cores, limit, environ)
        return _auto(cores, limit)
    if isinstance(setting, int):
        return _capped(setting, f"train.threads: {setting}", cores, limit, environ)
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp:
        return _capped(omp_threads(omp), f"OMP_NUM_THREADS={omp}", cores, limit, environ)
    return _auto(cores, limit)


def _auto(cores: int, limit: str) -> ThreadChoice:
    idle = idle_cores()
    if idle is None:
        return ThreadChoice(cores, f"auto: {limit}; the load could not be read")
    return ThreadChoice(_threads_for(idle, cores), f"auto: {idle:.1f} of {limit} idle", True)


def _threads_for(free: float, cores: int) -> int:
    """As many threads as there are cores free of other work (a core 80% free counts)."""
    return max(1, min(cores, math.floor(free + IDLE_MARGIN)))


def _capped(
    count: int, why: str, cores: int, limit: str, environ: dict[str, str] | os._Environ[str]
) -> ThreadChoice:
    """An explicit count, capped by a launcher's share (workers must not oversubscribe)."""
    if SHARE_ENV in environ and count > cores:
        return ThreadChoice(cores, f"{why}, capped to this process's share: {limit}")
    return ThreadChoice(count, why)


def threads_setting(text: str, where: str) -> int | str:
    """``auto`` or a whole number of threads (1 or more), as ``--threads`` takes it."""
    if text == "auto":
        return text
    if not text.isdigit() or not 1 <= int(text) <= 4096:
        raise ArgumentError(f"{where} is {text!r}: expected auto or a number of threads (1-4096)")
    return int(text)


def omp_threads(text: str) -> int:
    """The first level of ``OMP_NUM_THREADS`` (OpenMP allows ``4,2`` for nested levels)."""
    first = text.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise ArgumentError(
            f"OMP_NUM_THREADS is {text!r}, which is not a number of threads (1 or more): "
            "unset it to let ktg choose, or give --threads"
        )
    return int(first)


@contextlib.contextmanager
def env_kept(name: str) -> Iterator[None]:
    """The environment variable ``name`` as it was once the block ends: a command that sets
    ``KTG_THREADS`` (``--threads``) or ``KTG_CPU_SHARE`` (``search --jobs``) for itself and the
    processes it starts leaves nothing behind in a process that goes on (a library call, a
    test)."""
    before = os.environ.get(name)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a cgroup or taskset limits
    it), not the machine's count."""
    return _affinity()


def usable_cores(environ: dict[str, str] | os._Environ[str]) -> tuple[int, str]:
    """The cores this process may compute on: its CPU affinity, the cgroup's CPU quota and a
    launcher's share, whichever is smallest; and a few words saying which."""
    cores, whose = _affinity(), ""
    quota = _cgroup_quota()
    if quota is not None and quota < cores:
        cores, whose = quota, " of the cgroup's CPU quota"
    share = environ.get(SHARE_ENV, "")
    if share.isdigit() and int(share) >= 1:
        cores, whose = min(cores, int(share)), " of a launcher's share"
    return cores, f"{cores} core{'s' if cores != 1 else ''}{whose}"


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cgroup_quota() -> int | None:
    """cgroup v2's ``cpu.max`` as whole cores (rounded up), or None without a quota."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    return None


def idle_cores(window: float = LOAD_WINDOW_S, samples: int = LOAD_SAMPLES) -> float | None:
    """How many of this process's cores were idle (from ``/proc/stat``, while this process
    sleeps): the most over ``samples`` slices of ``window`` seconds, so that a short burst of
    another process (a shell command) is not taken for a busy neighbour, while one that keeps
    a core busy shows in every slice. None where the load cannot be read."""
    try:
        mine = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None
    seen: list[float] = []
    before = _cpu_times()
    for _ in range(samples):
        time.sleep(window / samples)
        after = _cpu_times()
        if not before or not after:
            return None
        seen.append(sum(_idle_share(before.get(c), after.get(c)) for c in mine))
        before = after
    return max(seen)


def _idle_share(before: list[int] | None, after: list[int] | None) -> float:
    """The share of time one CPU was idle between two readings (1.0 when it cannot tell)."""
    if before is None or after is None:
        return 1.0
    total = sum(after) - sum(before)
    free = (after[3] + after[4]) - (before[3] + before[4])
    return free / total if total > 0 else 1.0


def _cpu_times() -> dict[int, list[int]]:
    """Per CPU: user, nice, system, idle, iowait, ... jiffies (``/proc/stat``)."""
    times: dict[int, list[int]] = {}
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and len(fields) >= 5:
                times[int(name[3:])] = [int(f) for f in fields[:8]]
    return times


REVIEW_S = 3.0  # how often a governor looks at the load again while training


class ThreadGovernor:
    """Keeps ``auto`` true while a CPU run trains: every ``REVIEW_S`` seconds of steps, the
    cores other processes used meanwhile (the machine's busy time less this process's CPU time)
    decide the count again, so a neighbour that starts or stops after the run began is met
    within seconds. A count that was given (``--threads``, the spec, ``OMP_NUM_THREADS``) never
    changes."""

    def __init__(self, choice: ThreadChoice, device_type: str = "cpu") -> None:
        self.cores, self.limit = usable_cores(os.environ)
        self.active = choice.auto and self.cores > 1 and device_type == "cpu"
        self.active = self.active and bool(_cpu_times())
        self.changes: list[ThreadChoice] = []
        self._mark()

    def _mark(self) -> None:
        self.since, self.busy, self.mine = time.perf_counter(), _busy_seconds(), time.process_time()

    def step(self) -> ThreadChoice | None:
        """Called after each training step; the new choice when the count changed."""
        if not self.active or time.perf_counter() - self.since < REVIEW_S:
            return None
        wall = time.perf_counter() - self.since
        others = max(0.0, (_busy_seconds() - self.busy) - (time.process_time() - self.mine)) / wall
        self._mark()
        count = _threads_for(self.cores - others, self.cores)
        if count == torch.get_num_threads():
            return None
        torch.set_num_threads(count)
        choice = ThreadChoice(count, f"auto: other work used {others:.1f} of {self.limit}", True)
        global _applied
        _applied = choice
        self.changes.append(choice)
        return choice


def _busy_seconds() -> float:
    """Seconds the CPUs of this process's affinity spent on any work, summed (``/proc/stat``)."""
    try:
        mine = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return 0.0
    busy = 0
    for cpu, t in _cpu_times().items():
        if cpu in mine:
            busy += sum(t) - t[3] - t[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def thread_record() -> dict[str, object]:
    """The threads this process computes with, and why, for run.json and bench's JSON."""
    count = torch.get_num_threads()
    why = _applied.why if _applied and _applied.count == count else "torch's default"
    return {"threads": count, "threads_why": why}


def thread_text() -> str:
    """``N threads (why)`` for headers."""
    record = thread_record()
    return ThreadChoice(int(str(record["threads"])), str(record["threads_why"])).text()
