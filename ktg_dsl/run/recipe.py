"""A training run, as torchtune's recipe protocol: ``setup()`` builds everything (or restores it
from ``last.pt``), ``train()`` runs the epochs, ``save()`` writes ``last.pt``, ``cleanup()``
closes the logs. ``ktg train`` and ``ktg search`` both drive a KTG through it; epoch hooks
(``hooks``) see each epoch's rows (a search prunes there). The engine is any
:class:`~ktg_dsl.engine.TrainingEngine`; the recipe knows nothing of the command line.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ..components.data.bundle import DataBundle
from ..engine import Engine, NonFiniteLossError, Program, TrainingEngine
from ..errors import KtgRuntimeError
from ..graph import GraphReport
from ..spec.schema import Spec
from . import checkpoint as ckpt
from .data import load_bundle, make_batches, program_for
from .epochs import Rows, epoch_rows, save_best
from .logs import RunLog
from .progress import Progress
from .rundir import RunDir
from .signals import StopRequest
from .state import Position, RunResult, open_record, save_state

EpochHook = Callable[[int, Rows], None]


class Recipe:
    def __init__(
        self,
        spec: Spec,
        run: RunDir | str | Path,
        *,
        graph: GraphReport | None = None,
        resume: bool = False,
        progress: bool = True,
        hooks: Iterable[EpochHook] = (),
        tensorboard: bool = True,
        engine: Callable[[Program], TrainingEngine] = Engine,
        bundle: DataBundle | None = None,
    ) -> None:
        self.spec, self.graph, self.resume = spec, graph, resume
        self.run = run if isinstance(run, RunDir) else RunDir(Path(run))
        self.hooks, self.tensorboard, self.make_engine = list(hooks), tensorboard, engine
        self.progress, self.stop = Progress(progress), StopRequest()
        self.at = Position()  # where training (re)starts
        self.log: RunLog | None = None
        self._bundle = bundle  # the data, when the caller loaded it already

    def setup(self) -> None:
        spec = self.spec
        if spec.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.bundle = self._bundle if self._bundle is not None else load_bundle(spec)
        self.program = program_for(spec, self.graph, self.bundle)
        self.batches = make_batches(spec, self.bundle, self.program)
        self.engine = self.make_engine(self.program)
        # Dropout and other in-model randomness draw from the global generators: seed them
        # from the spec (a resumed run then restores their state from last.pt).
        torch.manual_seed(spec.seed)
        random.seed(spec.seed)
        for node in self.program.nodes.values():
            if node.config.checkpoint:
                ckpt.load_node_weights(node, Path(node.config.checkpoint))
        self.digest, self.at = open_record(
            self.run, spec, self.program, self.bundle.description, self.engine, self.resume
        )
        self.log = RunLog(self.run, self.program.names, self.at.epoch, self.tensorboard)

    def save(self, epoch: int, step: int) -> None:
        """Write last.pt: the run continues at batch ``step`` of ``epoch``."""
        at = Position(epoch, step, self.at.best, self.at.elapsed)
        save_state(self.run, self.spec, self.digest, self.engine, at)

    def train(self) -> RunResult:
        assert self.log is not None, "call setup() first"
        result = RunResult(self.run.path, self.at.epoch, best=self.at.best)
        with self.stop.catching():
            try:
                for epoch in range(self.at.epoch, self.spec.train.epochs):
                    if not self._epoch(epoch, result):
                        break
            except NonFiniteLossError as exc:
                kept = self.run.last.exists()
                where = f"; the last good checkpoint is kept: {self.run.last}" if kept else ""
                raise KtgRuntimeError(f"{exc}{where}") from None
        result.best, result.wall_time = self.at.best, self.at.elapsed
        return result

    def _epoch(self, epoch: int, result: RunResult) -> bool:
        """Train, evaluate, record and checkpoint one epoch; False when the run stops."""
        epochs, tick = self.spec.train.epochs, time.perf_counter()
        if self._train_batches(epoch, self.at.step if epoch == self.at.epoch else 0):
            result.interrupted = True
            self.at.elapsed += time.perf_counter() - tick
            return False
        stats = self.engine.end_epoch(epoch)
        due = (epoch + 1) % self.spec.train.eval_every == 0 or epoch + 1 == epochs
        rows = epoch_rows(
            self.program,
            epoch,
            stats,
            self.engine.evaluate_metrics(self.batches.eval) if due else {},
        )
        save_best(self.program, self.run, epoch, rows, self.at.best)
        self.at.elapsed += time.perf_counter() - tick
        for row in rows.values():
            row["epoch_time"] = round(time.perf_counter() - tick, 3)
            row["elapsed"] = round(self.at.elapsed, 3)
        assert self.log is not None
        self.log.epoch(epoch, rows)
        result.last, result.epochs_done = rows, epoch + 1
        due = (epoch + 1) % self.spec.train.checkpoint_every == 0 or epoch + 1 == epochs
        if due or self.stop.requested:
            self.save(epoch + 1, 0)
        self.progress.end(epoch, epochs, rows, self.bundle.eval_name)
        for hook in self.hooks:
            hook(epoch, rows)
        if self.stop.requested:  # asked during the epoch's last batch or its evaluation
            result.interrupted = epoch + 1 < epochs
            return False
        return True

    def _train_batches(self, epoch: int, first: int) -> bool:
        """Train one epoch from batch ``first``; True if stopped by Ctrl-C (state saved)."""
        batches = self.batches.train
        batches.set_epoch(epoch)
        total = len(batches)
        self.progress.start(epoch, self.spec.train.epochs, total, first)
        for step, (x, y) in enumerate(batches.iterate(start=first), start=first):
            self.engine.train_step(x, y, epoch, step)
            self.progress.step(self.engine.peek)
            if self.stop.requested and step + 1 < total:
                if self.engine.has_nonfinite():  # never replace a good last.pt with NaNs
                    broken = self.engine.nonfinite_nodes()
                    epochs, precision = self.spec.train.epochs, self.program.precision
                    raise NonFiniteLossError(broken, epoch, epochs, precision)
                self.save(epoch, step + 1)
                self.progress.note(f"stopped in epoch {epoch + 1} at batch {step + 1}/{total}")
                return True
        return False

    def cleanup(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
