"""``ktg train`` on every rank of a torchrun world (docs/distributed.md): rank 0 claims the run
directory (a new one; the one being resumed; after torchrun restarted the group, the same one,
resumed from its last manifest) and tells the others; every rank loads the data and trains its
nodes; rank 0 writes the run's files and prints. And the launcher behind ``--nproc N``:
torch.distributed's own elastic agent, on this machine."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, KtgRuntimeError
from ..graph import GraphReport
from ..spec.schema import Spec
from .data import load_bundle
from .distributed import Cluster, env_int, restarted, start
from .recipe import EpochHook
from .rundir import RunDir, claim_existing, claim_new, empty
from .session import Say, train_in
from .state import RunResult
from .workers import worker_command


def default_run_dir(spec: Spec) -> str | None:
    """Under torchrun, ``<out_dir>/<name>/torchrun-<launch>``: the same folder for every
    restart of the group, so that a restart resumes it. None outside torchrun."""
    if not os.environ.get("TORCHELASTIC_RUN_ID"):
        return None
    return str(Path(spec.train.out_dir) / spec.name / f"torchrun-{_launch_slug()}")


def launch_identity() -> str:
    """Which launch this process belongs to, the same over the group's restarts: torchrun's
    run id, or (an anonymous run id, ``none``) the elastic agent's host and process id."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
    if run_id and run_id != "none":
        return f"run id {run_id}"
    return f"agent {_agent()}"


def _agent() -> str:
    """The elastic agent (this worker's parent): host, process id and start time (clock ticks
    since boot), which a later launch does not share even when it gets the same pid (PID 1 in
    a container started again)."""
    pid = os.getppid()
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            started = stat.read().rsplit(")", 1)[1].split()[19]  # field 22: starttime
    except (OSError, IndexError, UnicodeDecodeError):
        started = "0"
    return f"{socket.gethostname()}-{pid}-{started}"


def _launch_slug() -> str:
    """The launch's identity as a folder name: the run id, or the agent's."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
    name = run_id if run_id != "none" else _agent()
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _claim(spec: Spec, run_dir: str | None, resume: str | None) -> tuple[RunDir, bool]:
    """Rank 0's run directory, and whether it resumes. A folder this group claimed before a
    restart (its torchrun run id is recorded there) is resumed, or cleared when the failed
    attempt left no checkpoint; any other folder is claimed as new (refused if in use)."""
    if resume:
        return claim_existing(resume), True
    path = run_dir or default_run_dir(spec)
    if path is not None and restarted():
        ours = RunDir(Path(path))
        if ours.launch() == launch_identity():
            if ours.last.exists():
                return claim_existing(path), True  # the group restarted: continue its run
            empty(Path(path))  # what this launch's failed first attempt wrote
    run = claim_new(path, spec.train.out_dir, spec.name)
    run.default_place = run.default_place or (run_dir is None)
    try:
        run.mark_launch(launch_identity())
    except OSError as exc:
        run.discard()
        run.release()
        raise KtgRuntimeError(f"cannot write in {run.path}: {exc.strerror or exc}") from None
    return run, False


def _agree_on_run(
    cluster: Cluster, spec: Spec, run_dir: str | None, resume: str | None
) -> tuple[RunDir, bool]:
    """Rank 0 claims; every rank gets the folder (or rank 0's error, so that none waits)."""
    claimed: RunDir | None = None
    decision: Any = None
    if cluster.mesh.rank == 0:
        try:
            claimed, resumed = _claim(spec, run_dir, resume)
            decision = (str(claimed.path), resumed, claimed.default_place)
        except (KtgRuntimeError, ArgumentError) as exc:
            decision = ("error", str(exc))
        except OSError as exc:  # e.g. the folder cannot be written: still tell the others
            decision = ("error", f"cannot claim the run directory: {exc.strerror or exc}")
    decision = cluster.broadcast(decision)
    if decision[0] == "error":
        raise KtgRuntimeError(decision[1])
    path, resumed, default_place = decision
    return claimed or RunDir(Path(path), default_place=default_place), resumed


def train_ranks(
    spec: Spec,
    graph: GraphReport,
    *,
    run_dir: str | None = None,
    resume: str | None = None,
    approximate: bool = False,
    progress: bool = True,
    say: Say = lambda _: None,
    hooks_for: Callable[[RunDir], Sequence[EpochHook]] | None = None,
) -> tuple[RunDir, RunResult | None, bool]:
    """Train on this rank; the run directory, the result, and whether this rank writes.
    ``hooks_for``: epoch hooks made for the run directory, called on the writing rank only."""
    watch_launcher(spec.train.distributed.timeout + LAUNCHER_GRACE)
    cluster = start(spec, graph)
    writer = cluster.mesh.rank == 0
    try:
        run, resumed = _agree_on_run(cluster, spec, run_dir, resume)
        bundle = load_bundle(spec)
        result = train_in(
            spec,
            graph,
            run,
            resume=resumed,
            progress=progress and writer,
            say=say if writer else (lambda _: None),
            bundle=bundle,
            cluster=cluster,
            approximate=approximate,
            hooks=hooks_for(run) if hooks_for is not None and writer else (),
        )
        return run, result, writer
    finally:
        cluster.close()


LAUNCHER_GRACE = 60.0  # seconds, past the collectives' timeout, to save before exiting
# seconds the elastic agent gives its ranks, after passing on a Ctrl-C or SIGTERM, to stop
# after their batch and save before it kills them (torch's default is 30, short for a large
# checkpoint); TORCH_ELASTIC_SHUTDOWN_TIMEOUT set by the user wins
STOP_GRACE = 300
SHUTDOWN_ENV = "TORCH_ELASTIC_SHUTDOWN_TIMEOUT"


def stop_grace() -> int:
    """The ranks' seconds to save after a Ctrl-C: the user's TORCH_ELASTIC_SHUTDOWN_TIMEOUT,
    read as carefully as a spec value (ArgumentError, exit 2), or STOP_GRACE."""
    why = (
        "how long the ranks get to save after Ctrl-C before they are killed, in whole "
        f"seconds; unset it for ktg's {STOP_GRACE}"
    )
    return env_int(SHUTDOWN_ENV, STOP_GRACE, low=0, why=why)


def watch_launcher(grace: float, every: float = 0.5) -> None:
    """End this rank with its launcher (``ktg train --nproc``, torchrun): when the process
    that started it goes away (killed, even by SIGKILL, which it cannot pass on), this rank
    stops after its batch and saves, as on Ctrl-C (one rank's stop is agreed by all), and
    exits at the latest ``grace`` seconds later. Nothing is left running, holding the run's
    lock. Study workers watch their parent the same way (study/worker.py)."""
    import signal
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        with contextlib.suppress(OSError, ValueError):  # the launcher's pipe may be gone too
            print(
                f"ktg: rank {os.environ.get('RANK', '?')}: its launcher (process {parent}) is "
                "gone; stopping after this batch and saving",
                file=sys.stderr,
                flush=True,
            )
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(grace)
        os._exit(130)  # still stuck (e.g. in a collective with a rank that died): go

    threading.Thread(target=watch, name="ktg-launcher-watch", daemon=True).start()


def lost_peer(exc: BaseException) -> bool:
    """Whether a collective failed because another rank went away (gloo's connection errors,
    NCCL's DistBackendError, a collective's timeout) rather than a bug here."""
    import torch.distributed as dist

    if isinstance(exc, dist.DistBackendError):
        return True
    text = str(exc)
    return any(
        sign in text
        for sign in ("gloo/transport", "Connection reset", "Connection closed", "timed out")
    )


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


def launch(nproc: int, argv: list[str], plugins: list[str], max_restarts: int, run_id: str) -> None:
    """Run ``ktg ARGV`` on ``nproc`` local processes under torch.distributed's elastic agent
    (what torchrun runs): it restarts the group up to ``max_restarts`` times after a rank
    dies, and raises ChildFailedError when it gives up."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # a fresh store for every restart: a store shared across restarts can hand a restarted
    # rank its dead predecessor's address
    os.environ.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    os.environ[SHUTDOWN_ENV] = str(stop_grace())
    os.environ["KTG_NPROC"] = "1"  # the workers say `ktg train --resume DIR --nproc N`
    command = worker_command(argv, plugins)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=run_id,
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=max_restarts,
        monitor_interval=0.5,
        start_method="spawn",
    )
    elastic_launch(config, command[0])(*command[1:])
    sys.stdout.flush()
