"""Run directories: where they go, how a run claims one, the ``latest`` link, and the name of
every file a run writes (no other module spells them).

A run claims its directory with an advisory lock (``fcntl.flock`` on ``.ktg.lock``) held for
the run's life: a second run, or a second resume, of the same directory is refused with the
holder's pid, whatever the timing. A run that fails before its first checkpoint removes only
what it created; ``latest`` moves (atomically) only once a run has a checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..atomic import pid_lock, write_text_atomic
from ..bounded import ReadRefused, read_text_capped
from ..errors import KtgRuntimeError

RESOLVED = "spec.resolved.yaml"  # the spec with every default written out
LAST = "last.pt"  # everything needed to continue
METRICS = "metrics.jsonl"  # one line per epoch and node
RUN_INFO = "run.json"  # where and how the run ran
BEST = "best"  # best/<node>.pt: each node's weights at its best evaluation
TENSORBOARD = "tb"  # tb/<node>/: TensorBoard event files
STATE = "state"  # state/<node>-<epoch>-<step>.pt: each node's part of last.pt
LATEST = "latest"  # beside default run directories: the newest run with a checkpoint
REPORT = "report.html"  # ktg train --report: the run's page, replaced after every epoch
TB_GRAPH = "ktg.graph"  # tb/ktg.graph/: the graph's picture per epoch (no node has a dot)
LOCK = ".ktg.lock"
LAUNCH = ".ktg.launch"  # under torchrun: the launch that claimed the folder (restarts take it)


@dataclass
class RunDir:
    """A claimed run directory. ``default_place``: under ``<out_dir>/<name>/``, where the
    ``latest`` link lives; ``created``: this run made the folder (so it may remove it)."""

    path: Path
    default_place: bool = False
    created: bool = False
    _lock: IO[str] | None = field(default=None, repr=False)
    _before: set[str] = field(default_factory=set, repr=False)
    _parents: list[Path] = field(default_factory=list, repr=False)  # folders made above it

    @property
    def resolved(self) -> Path:
        return self.path / RESOLVED

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def info(self) -> Path:
        return self.path / RUN_INFO

    @property
    def state_dir(self) -> Path:
        return self.path / STATE

    def state_file(self, node: str, tag: str) -> Path:
        return self.path / STATE / f"{node}-{tag}.pt"

    def best(self, node: str) -> Path:
        return self.path / BEST / f"{node}.pt"

    def tensorboard(self, node: str) -> Path:
        return self.path / TENSORBOARD / node

    def launch(self) -> str | None:
        """The launch (torchrun's run id, or its agent) that claimed this folder, if one did."""
        try:  # a few words: anything larger (or not a file) is no launch's mark
            return read_text_capped(self.path / LAUNCH, 4096, "the launch mark") or None
        except ReadRefused:
            return None

    def mark_launch(self, identity: str) -> None:
        """Record the launch that claimed this folder: after a restart, the same launch may
        resume it (or clear what its failed first attempt left), and nothing else may."""
        write_text_atomic(self.path / LAUNCH, identity)

    def prepare(self) -> None:
        """Make the folder and its best/ subfolder (a clear error when they cannot be)."""
        try:
            (self.path / BEST).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KtgRuntimeError(f"cannot create {self.path}: {exc.strerror or exc}") from None

    def release(self) -> None:
        """Give up the claim (the lock file stays: removing it would race a new claimant)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def discard(self) -> None:
        """Remove what this run wrote, if it never reached a checkpoint: it holds nothing to
        resume and would block the next run of the same directory. Files that were there
        before the claim are never touched."""
        if self.last.exists():
            return
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            for folder in self._parents:  # e.g. runs/<name>/, unless another run is in it
                try:
                    folder.rmdir()
                except OSError:
                    break
            return
        for entry in self.path.iterdir() if self.path.is_dir() else []:
            if entry.name not in self._before and entry.name != LOCK:
                _remove(entry, ignore_errors=True)


def written_files(path: Path) -> dict[str, str]:
    """The files ``ktg train`` wrote in the run directory ``path``, by what each is: what a
    command's output must never replace (``ktg export -o runs/x/latest/last.pt``)."""
    named = {
        "the run's spec": RESOLVED,
        "the run's checkpoint": LAST,
        "the run's metrics log": METRICS,
        "the run's facts": RUN_INFO,
        "the run's page": REPORT,
        "the run's lock": LOCK,
    }
    out = {what: str(path / name) for what, name in named.items() if (path / name).exists()}
    kinds = {BEST: "the best weights", STATE: "a part of the checkpoint", TENSORBOARD: "a log"}
    for folder, what in kinds.items():
        with contextlib.suppress(OSError):
            for file in sorted((path / folder).rglob("*")):
                if file.is_file():  # each its own key: "the best weights (b.pt) of the run"
                    out[f"{what} ({file.relative_to(path / folder)}) of the run"] = str(file)
    return out


def empty(path: Path) -> None:
    """Remove what is in ``path`` (its lock aside), never ``path`` itself: it may be a link,
    a mount point, or a folder the user made."""
    try:
        for entry in path.iterdir():
            if entry.name != LOCK:
                _remove(entry)
    except OSError as exc:
        raise KtgRuntimeError(f"cannot clear {path}: {exc.strerror or exc}") from None


def _remove(entry: Path, ignore_errors: bool = False) -> None:
    """Remove a file, a link (not what it points to) or a folder with what is in it."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=ignore_errors)
    else:
        entry.unlink(missing_ok=ignore_errors)


def _mkdir(path: Path, **kwargs: bool) -> None:
    try:
        path.mkdir(**kwargs)
    except FileExistsError:
        raise KtgRuntimeError(f"cannot create {path}: a file of that name is in the way") from None
    except OSError as exc:
        raise KtgRuntimeError(f"cannot create {path}: {exc.strerror or exc}") from None


def _lock(run: RunDir) -> None:
    """Take the run's lock, or refuse naming the process that holds it."""
    run._lock = pid_lock(
        run.path / LOCK,
        f"cannot claim {run.path}",
        f"{run.path} is in use by a running ktg (pid {{pid}}); wait for it to finish, "
        "or choose another --run-dir",
    )


def _refuse_if_used(path: Path) -> None:
    if not path.is_dir() or not any(p.name != LOCK for p in path.iterdir()):
        return
    if any((path / name).exists() for name in (LAST, RESOLVED, METRICS, RUN_INFO)):
        raise KtgRuntimeError(
            f"{path} already holds a run; continue it with "
            f"`ktg train --resume {path}` or choose another --run-dir"
        )
    raise KtgRuntimeError(
        f"--run-dir {path} is a folder with files in it; a run directory must be new or "
        "empty (nothing in it is touched): choose another --run-dir"
    )


def _missing(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    return [p for p in [path, *path.parents] if not p.exists()]


def check_new(explicit: str | Path | None) -> None:
    """What :func:`claim_new` would refuse about ``--run-dir``, found without creating
    anything: call it before slow work (loading the data) that comes before the claim."""
    if explicit is not None:
        path = Path(explicit)
        if path.exists() and not path.is_dir():
            raise KtgRuntimeError(f"--run-dir {path} is a file, not a folder")
        _refuse_if_used(path)


def claim_new(explicit: str | Path | None, out_dir: str, name: str) -> RunDir:
    """A new run directory: ``explicit`` (new, or an existing empty folder), else
    ``<out_dir>/<name>/<YYYYmmdd-HHMMSS>`` (a suffix when two runs start in one second)."""
    if explicit is not None:
        path = Path(explicit)
        check_new(path)  # before writing anything into a folder that is not ours
        existed, parents = path.is_dir(), _missing(path.parent)
        _mkdir(path, parents=True, exist_ok=True)
        run = RunDir(path, created=not existed, _parents=parents)
        _lock(run)
        try:
            _refuse_if_used(path)  # a run that claimed it in between
        except KtgRuntimeError:
            run.release()
            raise
        return run
    base = Path(out_dir) / name
    parents = _missing(base)
    _mkdir(base, parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        path = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()  # creating it is what claims it: two runs never share one
        except FileExistsError:
            continue
        except OSError as exc:
            raise KtgRuntimeError(f"cannot create {path}: {exc.strerror or exc}") from None
        run = RunDir(path, default_place=True, created=True, _parents=parents)
        _lock(run)
        return run
    raise KtgRuntimeError(f"cannot find a free run directory in {base}")


def claim_existing(path: str | Path) -> RunDir:
    """An existing run directory, to resume: it must hold the resolved spec and last.pt."""
    run = RunDir(Path(path))
    if not run.resolved.exists() or not run.last.exists():
        raise KtgRuntimeError(
            f"{run.path} is not a run directory with a checkpoint (needs {RESOLVED} and {LAST})"
        )
    _lock(run)
    run._before = {p.name for p in run.path.iterdir()}
    return run


def link_latest(run: RunDir) -> None:
    """Point ``latest`` beside a default run directory at it, atomically (a new link renamed
    over the old). Only a link is ever replaced: a file or folder of that name is the user's."""
    if not run.default_place:
        return
    link = run.path.parent / LATEST
    if link.exists() and not link.is_symlink():
        return
    tmp = run.path.parent / f".{LATEST}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):  # a file system without links: nothing depends on it
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run.path.name)
        os.replace(tmp, link)
