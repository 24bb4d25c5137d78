"""Study storages: a journal file by default, or any Optuna storage URL (sqlite, PostgreSQL,
MySQL) shared by workers on many machines; and the trials a killed worker left running."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import stat
import time
from pathlib import Path
from typing import Any

from ..errors import KtgRuntimeError
from ..registry import PRUNERS, SAMPLERS
from ..spec.schema import Spec
from .journal import append, repair_journal
from .objective import HOST, direction


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
    """A journal file storage; the file must be a journal (or new). A record cut short at the
    end (a worker killed while writing, a full disk) is dropped first, with a warning."""
    import optuna
    from optuna.storages.journal import JournalFileSymlinkLock

    path = Path(url)
    if path.is_dir():
        raise KtgRuntimeError(f"--storage {url} is a folder; name a journal file in it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KtgRuntimeError(
            f"cannot create the folder of --storage {url}: {exc.strerror or exc}"
        ) from None
    lock = JournalFileSymlinkLock(str(path))
    if path.exists():
        _check_regular(path, url)
        repair_journal(path, url, lock)
    try:
        return optuna.storages.JournalStorage(_backend_class()(str(path), lock_obj=lock))
    except Exception as exc:  # damage the scan cannot tell (a record without its fields)
        raise KtgRuntimeError(f"cannot read the study journal {url}: {damage(exc)}") from None


def _check_regular(path: Path, url: str) -> None:
    """Only a regular file is a journal: reading a FIFO or a device would never end."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"))
    kind = next((k for test, k in kinds if test(mode)), "not a regular file")
    raise KtgRuntimeError(
        f"--storage {url} is {kind}, not a journal file; name a new file or an existing journal"
    )


def damage(exc: BaseException) -> str:
    """What an error Optuna raised while reading a journal says about the file, in words."""
    if isinstance(exc, KeyError):
        what = f"a record without the field {exc.args[0]!r}" if exc.args else "a record"
    elif isinstance(exc, AssertionError):
        what = "a record of an operation this Optuna does not know"
    elif isinstance(exc, ValueError):
        what = "a line that is not a complete record"
    else:
        what = f"{type(exc).__name__}: {str(exc).strip() or 'no message'}"
    return (
        f"the file holds {what}; it was damaged or written by another tool. Move it aside "
        "and start a new study (--storage NEW_FILE)"
    )


@functools.cache
def _backend_class() -> type:
    """Optuna's journal file backend, except that an append never lands on a partial line:
    under the journal's lock, a record cut short at the end of the file is dropped first."""
    from optuna.storages.journal import JournalFileBackend

    class SafeJournalFileBackend(JournalFileBackend):
        def __init__(self, file_path: str, lock_obj: Any) -> None:
            super().__init__(file_path, lock_obj=lock_obj)
            self._ktg_lock = lock_obj

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            append(self._file_path, logs, self._ktg_lock, self._file_path)

    return SafeJournalFileBackend


def route_optuna_logging() -> None:
    """Optuna's log records go through Python's logging (the ``optuna`` logger), errors only,
    instead of its own stderr handler: its notes ("A new study created", "Using an existing
    study") and a failed trial's traceback are not ktg's output (a trial's line says why)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def open_study(spec: Spec, storage: Any, name: str, seed: int | None) -> Any:
    import optuna

    route_optuna_logging()
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
    except (KeyError, AssertionError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        # Optuna's words for a journal record it cannot read or apply
        raise KtgRuntimeError(f"cannot open study '{name}': {damage(exc)}") from None
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
