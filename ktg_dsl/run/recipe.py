"""A training run, as torchtune's recipe protocol: ``setup()`` builds everything (or restores it
from ``last.pt``), ``train()`` runs the epochs, ``save()`` writes ``last.pt``, ``cleanup()``
closes the logs. ``ktg train`` and ``ktg search`` both drive a KTG through it; epoch hooks
(``hooks``) see each epoch's rows (a search prunes there). On one process the engine is any
:class:`~ktg_dsl.engine.TrainingEngine` (``engine=``); on several, the DistributedEngine. The
recipe knows nothing of the command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..components.data.bundle import DataBundle
from ..engine import Engine, NonFiniteLossError, Program, TrainingEngine
from ..engine.ssl import SelfSupervisedEngine
from ..errors import KtgRuntimeError
from ..graph import GraphReport
from ..spec.schema import Spec
from . import checkpoint as ckpt
from .data import bundle_facts, eval_label, load_bundle, make_batches, program_for
from .distributed import Cluster
from .env import seed_generators, set_determinism
from .epochs import Rows, epoch_rows, save_best, stamp
from .logs import NullLog, RunLog
from .progress import Progress
from .rundir import RunDir
from .signals import StopRequest
from .state import Position, RunResult, open_record, save_state
from .threads import ThreadGovernor, apply_threads

AGREE_EVERY = 8  # steps between the ranks' agreements on a stop (one acts at once)

EpochHook = Callable[[int, Rows], None]


def default_engine(program: Program) -> TrainingEngine:
    """The single-process engine a program needs: the self-supervised one for a
    self-supervised program (``program.knn`` set), else the supervised one."""
    return SelfSupervisedEngine(program) if program.knn is not None else Engine(program)


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
        engine: Callable[[Program], TrainingEngine] | None = None,
        bundle: DataBundle | None = None,
        cluster: Cluster | None = None,
        approximate: bool = False,
    ) -> None:
        self.spec, self.graph, self.resume = spec, graph, resume
        self.run = run if isinstance(run, RunDir) else RunDir(Path(run))
        self.hooks, self.tensorboard, self.make_engine = list(hooks), tensorboard, engine
        self.progress, self.stop = Progress(progress), StopRequest()
        self.at = Position()  # where training (re)starts
        self.log: RunLog | NullLog = NullLog()
        self._bundle = bundle  # the data, when the caller loaded it already
        self.cluster, self.approximate = cluster, approximate  # a mesh of processes, or None

    def _engine_maker(self) -> Callable[[Program], TrainingEngine]:
        """``engine=`` on one process (the single-process Engine by default); on a mesh of
        processes the DistributedEngine, the one engine that exchanges between ranks: an
        ``engine=`` there is refused, not silently replaced."""
        if self.cluster is None:
            return self.make_engine or default_engine
        if self.make_engine is not None:
            raise KtgRuntimeError(
                "Recipe(engine=...) runs on one process; on several processes ktg runs its "
                "DistributedEngine: leave engine= out, or run on one process"
            )
        return self.cluster.engine

    def setup(self) -> None:
        spec = self.spec
        self.threads = apply_threads(spec.train.threads)
        set_determinism(spec.train.deterministic)
        self.bundle = self._bundle if self._bundle is not None else load_bundle(spec)
        self.program = program_for(spec, self.graph, self.bundle, self.cluster)
        self.batches = make_batches(spec, self.bundle, self.program, self.cluster)
        self.data_facts = bundle_facts(self.bundle)
        self.engine = self._engine_maker()(self.program)
        self.governor = ThreadGovernor(self.threads, self.program.device.type)
        writer = self.engine.coordinator.is_writer()
        self.progress.keep_if(writer)  # rank 0 shows progress (bars on a terminal only)
        seed_generators(spec.seed)
        ckpt.load_starting_weights(self.program)
        record = (self.bundle.description, self.engine, self.resume, self.approximate)
        self.digest, self.at = open_record(self.run, spec, self.program, *record)
        names, tb = self.program.names, self.tensorboard
        self.log = RunLog(self.run, names, self.at.epoch, tb) if writer else NullLog()

    def save(self, epoch: int, step: int) -> None:
        """Write last.pt: the run continues at batch ``step`` of ``epoch``."""
        at = Position(epoch, step, self.at.best, self.at.elapsed)
        save_state(self.run, self.spec, self.digest, self.engine, at)

    def train(self) -> RunResult:
        assert hasattr(self, "engine"), "call setup() first"
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
        save_best(
            self.program, self.run, epoch, rows, self.at.best, self.engine.coordinator,
            self.data_facts,
        )  # fmt: skip
        self.at.elapsed += time.perf_counter() - tick
        self.log.epoch(epoch, stamp(rows, tick, self.at.elapsed))
        result.last, result.epochs_done = rows, epoch + 1
        due = (epoch + 1) % self.spec.train.checkpoint_every == 0 or epoch + 1 == epochs
        stopping = self.stop.requested = self.engine.coordinator.agree(self.stop.requested)
        if due or stopping:
            self.save(epoch + 1, 0)
        self.progress.end(epoch, epochs, rows, eval_label(self.spec, self.bundle.eval_name))
        for hook in self.hooks:
            hook(epoch, rows)
        alone = self.engine.coordinator.world == 1  # ranks act only on what they agreed on
        if stopping or (alone and self.stop.requested):  # during the last batch, eval, hooks
            result.interrupted = epoch + 1 < epochs
            return False
        return True

    def _train_batches(self, epoch: int, first: int) -> bool:
        """Train one epoch from batch ``first``; True if stopped by Ctrl-C (state saved)."""
        batches = self.batches.train
        batches.set_epoch(epoch)
        total = len(batches)
        self.progress.start(epoch, self.spec.train.epochs, total, first)
        every = 1 if self.engine.coordinator.world == 1 else AGREE_EVERY  # a host sync each
        for step, (x, y) in enumerate(batches.iterate(start=first), start=first):
            self.engine.train_step(x, y, epoch, step)
            self.progress.step(self.engine.peek)
            changed = self.governor.step()
            if changed:
                self.progress.say(f"ktg: now {changed.text()}")
            if (step + 1) % every and step + 1 < total:
                continue
            self.stop.requested = self.engine.coordinator.agree(self.stop.requested)
            if self.stop.requested and step + 1 < total:
                self.engine.raise_if_nonfinite(epoch)  # never replace a good last.pt with NaNs
                self.save(epoch, step + 1)
                self.progress.note(f"stopped in epoch {epoch + 1} at batch {step + 1}/{total}")
                return True
        return False

    def cleanup(self) -> None:
        self.log.close()
        self.log = NullLog()
