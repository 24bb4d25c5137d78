"""A study's worker process: trains one run and prints its outcome as its last line. Started by
:data:`~ktg_dsl.study.runner.BOOTSTRAP` with the job as JSON; never imported by the parent's
command line parsing."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict

from .runner import OUTCOME, Job, Outcome, run_one

EXIT = {"done": 0, "failed": 1, "interrupted": 130}


def _watch_parent() -> None:
    """When the study's process dies, this worker's stdin closes: stop after the batch and
    save, as Ctrl-C would (the run stays resumable)."""

    def wait() -> None:
        try:  # the raw descriptor: a buffered reader's lock would block interpreter shutdown
            while os.read(0, 4096):
                pass
        except OSError:
            return
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=wait, daemon=True).start()


def main(argv: Sequence[str]) -> int:
    # the spec stack (pydantic, yaml) first: a module shadowing one fails here, loudly
    from ..check import check_file  # noqa: F401
    from ..registry import PluginError, load_plugins

    try:
        job = Job.from_json(argv[0])
    except (IndexError, ValueError, TypeError) as exc:
        print(f"ktg study worker: needs a job as JSON ({exc})", file=sys.stderr)
        return 2
    _watch_parent()
    try:
        load_plugins(job.plugins)
        outcome = run_one(job)
    except PluginError as exc:
        outcome = Outcome(job.key, "failed", str(exc))
    except KeyboardInterrupt:
        outcome = Outcome(job.key, "interrupted")
    print(OUTCOME + json.dumps(asdict(outcome)), flush=True)
    return EXIT[outcome.status]
