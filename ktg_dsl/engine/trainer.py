"""A training run: data, program, engine, epochs, evaluation, logs and checkpoints.

The recipe protocol (torchtune's): ``setup()`` builds everything (or restores it from
``last.pt``), ``train()`` runs the epochs, ``save()`` writes ``last.pt``, ``cleanup()`` closes
the logs. ``ktg train`` and ``ktg search`` both drive a KTG through it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import yaml

from ..atomic import write_text_atomic
from ..compiler import Program, compile_spec, device_name
from ..components.data import DatasetInfo
from ..components.data.bundle import DataBundle
from ..components.data.loader import TensorBatches, eval_batches, train_batches
from ..errors import KtgRuntimeError
from ..registry import DATASETS
from ..spec.components import resolve_refs
from ..spec.schema import Spec
from . import checkpoint as ckpt
from .core import Engine, NonFiniteLossError
from .runlog import Progress, RunLog

RESOLVED = "spec.resolved.yaml"
LAST = "last.pt"

EpochCallback = Callable[[int, dict[str, dict[str, Any]]], None]


@dataclass
class RunResult:
    run_dir: Path
    epochs_done: int
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> val_top1, epoch
    last: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> last epoch's row
    interrupted: bool = False
    wall_time: float = 0.0


def resolved_spec_text(spec: Spec) -> str:
    """The spec with every default written out, paths absolute: ``ktg train`` on it runs the
    same thing from anywhere."""
    data = resolve_refs(spec).to_data()
    data["data"]["root"] = str(Path(data["data"]["root"]).absolute())
    for node in data["nodes"].values():
        if node.get("checkpoint"):
            node["checkpoint"] = str(Path(node["checkpoint"]).absolute())
    head = (
        "# Written by ktg train: the spec of this run with every default filled in.\n"
        "# `ktg train THIS_FILE` repeats the run; `ktg train --resume RUN_DIR` continues it.\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def spec_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Trainer:
    def __init__(
        self,
        spec: Spec,
        run_dir: Path,
        *,
        resume: bool = False,
        progress: bool = True,
        on_epoch: EpochCallback | None = None,
        tensorboard: bool = True,
    ) -> None:
        self.spec = spec
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.on_epoch = on_epoch
        self.progress = Progress(progress)
        self.tensorboard = tensorboard
        self.start_epoch = 0
        self.start_step = 0
        self.best: dict[str, dict[str, Any]] = {}
        self.elapsed = 0.0
        self._stop_requested = False
        self.log: RunLog | None = None

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        spec = self.spec
        if spec.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.bundle = self._load_data()
        bundle = self.bundle
        batch = spec.data.batch_size
        if len(bundle.train) < batch and spec.data.drop_last:
            raise KtgRuntimeError(
                f"the training split has {len(bundle.train)} samples, fewer "
                f"than one batch of {batch} (set data.batch_size lower or "
                "data.drop_last: false)"
            )
        steps = (
            len(bundle.train) // batch
            if spec.data.drop_last
            else math.ceil(len(bundle.train) / batch)
        )
        info = DatasetInfo(bundle.num_classes, bundle.input_shape)
        self.program: Program = compile_spec(spec, steps_per_epoch=steps, data_info=info)
        program = self.program
        on_device = self._on_device(bundle, program.device)
        self.train_batches: TensorBatches = train_batches(
            bundle,
            batch,
            seed=spec.seed,
            device=program.device,
            drop_last=spec.data.drop_last,
            channels_last=program.channels_last,
            on_device=on_device,
        )
        self.eval_batches: TensorBatches = eval_batches(
            bundle.eval,
            spec.data.eval_batch_size or 4 * batch,
            mean=bundle.mean,
            std=bundle.std,
            device=program.device,
            channels_last=program.channels_last,
            on_device=on_device,
        )
        self.engine = Engine(program)
        # Dropout and other in-model randomness draw from the global generators: seed them
        # from the spec (a resumed run then restores their state from last.pt).
        torch.manual_seed(spec.seed)
        random.seed(spec.seed)
        for node in program.nodes.values():
            if node.config.checkpoint:
                ckpt.load_node_weights(node, Path(node.config.checkpoint))
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "best").mkdir(exist_ok=True)
        except OSError as exc:
            raise KtgRuntimeError(
                f"cannot create the run directory {self.run_dir}: {exc.strerror or exc}"
            ) from None
        text = resolved_spec_text(spec)
        if self.resume:
            self._restore(text)
        else:
            write_text_atomic(self.run_dir / RESOLVED, text)
            write_text_atomic(self.run_dir / "run.json", json.dumps(self._run_info(), indent=2))
        self.digest = spec_digest(text)
        self.log = RunLog(self.run_dir, program.names, self.start_epoch, self.tensorboard)

    def _run_info(self) -> dict[str, Any]:
        """Where and how this run ran: what the resolved spec's 'auto' values became."""
        p = self.program
        return {
            "spec": self.spec.name,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "device": str(p.device),
            "device_name": device_name(p.device),
            "precision": p.precision,
            "channels_last": p.channels_last,
            "data": self.bundle.description,
            "steps_per_epoch": p.steps_per_epoch,
            "torch": torch.__version__,
            "python": platform.python_version(),
        }

    def _load_data(self) -> DataBundle:
        d = self.spec.data
        comp = DATASETS.get(d.dataset.type)
        bundle = comp.build(
            d.dataset.args, root=d.root, download=d.download, seed=self.spec.seed, split=d.split
        )
        if not isinstance(bundle, DataBundle):
            raise KtgRuntimeError(
                f"dataset '{d.dataset.type}' returned {type(bundle).__name__}, not a DataBundle"
            )
        return bundle

    def _on_device(self, bundle: DataBundle, device: torch.device) -> bool:
        switch = self.spec.data.on_device
        if switch != "auto" or device.type != "cuda":
            return switch == "on" and device.type == "cuda"
        size = sum(
            t.numel() * t.element_size()
            for s in (bundle.train, bundle.eval)
            for t in (s.images, s.labels)
        )
        free, _ = torch.cuda.mem_get_info(device)
        return size < 0.25 * free  # leave the GPU to the models

    def _restore(self, text: str) -> None:
        path = self.run_dir / LAST
        state = ckpt.load(path, "run checkpoint")
        if state.get("format") != ckpt.RUN_FORMAT:
            raise KtgRuntimeError(
                f"{path} is not a ktg run checkpoint (format "
                f"{state.get('format')!r}); nothing was changed"
            )
        if state.get("spec_digest") != spec_digest(text):
            raise KtgRuntimeError(
                f"{path} belongs to another run (its spec differs from "
                f"{self.run_dir / RESOLVED}); nothing was changed"
            )
        try:
            self.engine.load_state_dict(state["engine"])
            self.engine.load_metrics_state(state["metrics"])
            ckpt.set_rng_state(state["rng"])
            self.start_epoch = int(state["epoch"])
            self.start_step = int(state["step"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise KtgRuntimeError(
                f"{path} is damaged or from another ktg version "
                f"({type(exc).__name__}: {exc}); nothing was changed"
            ) from None
        self.best = dict(state.get("best", {}))
        self._warn_if_elsewhere()
        self.elapsed = float(state.get("elapsed", 0.0))

    def _warn_if_elsewhere(self) -> None:
        """A run resumed where 'auto' resolves differently is no longer the same run."""
        try:
            before = json.loads((self.run_dir / "run.json").read_text())
        except (OSError, ValueError):
            return
        now = self._run_info()
        changed = [
            f"{k} {before.get(k)} -> {now[k]}"
            for k in ("device", "precision", "channels_last")
            if before.get(k) != now[k]
        ]
        if changed:
            print(
                "ktg: warning: this run continues on a different setup ("
                + ", ".join(changed)
                + "); it will not match an uninterrupted run exactly",
                file=sys.stderr,
            )

    # ------------------------------------------------------------------ save

    def save(self, epoch: int, step: int) -> None:
        """Write last.pt: the run continues at batch ``step`` of ``epoch``."""
        state = {
            "format": ckpt.RUN_FORMAT,
            "version": ckpt.VERSION,
            "spec_name": self.spec.name,
            "spec_digest": self.digest,
            "epoch": epoch,
            "step": step,
            "engine": self.engine.state_dict(),
            "metrics": self.engine.metrics_state(),
            "best": self.best,
            "rng": ckpt.rng_state(),
            "elapsed": self.elapsed,
        }
        ckpt.save(state, self.run_dir / LAST)

    # ------------------------------------------------------------------ train

    @property
    def stop_requested(self) -> bool:
        """Ctrl-C (or SIGTERM) was received during ``train()``."""
        return self._stop_requested

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_requested:  # a second Ctrl-C: stop now, without saving
            raise KeyboardInterrupt
        self._stop_requested = True
        print(
            "\nktg: stopping after this batch and saving last.pt (Ctrl-C again to abort "
            "without saving)",
            flush=True,
        )

    def train(self) -> RunResult:
        assert self.log is not None, "call setup() first"
        spec, program, engine = self.spec, self.program, self.engine
        epochs = spec.train.epochs
        result = RunResult(self.run_dir, self.start_epoch, best=self.best)
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Ctrl-C, or a cluster scheduler's polite stop: save, then stop. Outside the main
            # thread (a search worker thread) signals cannot be caught: ValueError.
            with contextlib.suppress(ValueError):
                previous[sig] = signal.signal(sig, self._request_stop)
        try:
            for epoch in range(self.start_epoch, epochs):
                tick = time.perf_counter()
                first = self.start_step if epoch == self.start_epoch else 0
                if self._run_epoch(epoch, first):
                    result.interrupted = True
                    self.elapsed += time.perf_counter() - tick
                    break
                stats = engine.end_epoch(epoch)
                rows = self._evaluate(epoch, stats)
                self.elapsed += time.perf_counter() - tick
                for row in rows.values():
                    row["epoch_time"] = round(time.perf_counter() - tick, 3)
                    row["elapsed"] = round(self.elapsed, 3)
                self.log.epoch(epoch, rows)
                result.last = rows
                result.epochs_done = epoch + 1
                saved = (epoch + 1) % spec.train.checkpoint_every == 0 or epoch + 1 == epochs
                if saved or self._stop_requested:
                    self.save(epoch + 1, 0)
                self.progress.end(self._epoch_line(epoch, rows))
                if self.on_epoch is not None:
                    self.on_epoch(epoch, rows)
                if self._stop_requested:  # asked during the epoch's last batch or evaluation
                    result.interrupted = epoch + 1 < epochs
                    break
        except NonFiniteLossError as exc:
            last = self.run_dir / LAST
            kept = f"; the last good checkpoint is kept: {last}" if last.exists() else ""
            raise KtgRuntimeError(f"{exc}{kept}") from None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        result.best = self.best
        result.wall_time = self.elapsed
        del program
        return result

    def _run_epoch(self, epoch: int, first: int) -> bool:
        """Train one epoch from batch ``first``; True if stopped by Ctrl-C (state saved)."""
        batches = self.train_batches
        batches.set_epoch(epoch)
        total = len(batches)
        every = self.spec.train.log_every
        self.progress.start(epoch, self.spec.train.epochs, total, first)
        for step, (x, y) in enumerate(batches.iterate(start=first), start=first):
            self.engine.train_step(x, y, epoch, step)
            if (step + 1) % every == 0:
                self.progress.update(every, self.engine.peek() if self.progress.bar_ok else None)
            if self._stop_requested and step + 1 < total:
                if self.engine.has_nonfinite():  # never replace a good last.pt with NaNs
                    raise NonFiniteLossError(
                        self.engine.nonfinite_nodes(),
                        epoch,
                        self.spec.train.epochs,
                        self.program.precision,
                    )
                self.save(epoch, step + 1)
                self.progress.end(f"stopped in epoch {epoch + 1} at batch {step + 1}/{total}")
                return True
        return False

    def _evaluate(
        self, epoch: int, stats: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, Any]]:
        spec, program = self.spec, self.program
        last = epoch + 1 == spec.train.epochs
        val: dict[str, dict[str, float]] = {}
        if (epoch + 1) % spec.train.eval_every == 0 or last:
            val = self.engine.evaluate_metrics(self.eval_batches)
        weights = program.gate_weights(epoch)
        names = program.names
        rows: dict[str, dict[str, Any]] = {}
        for node in program.nodes.values():
            row: dict[str, Any] = {
                "train_loss": stats.get(node.name, {}).get("train_loss"),
                "train_top1": stats.get(node.name, {}).get("train_top1"),
                "val_top1": val.get(node.name, {}).get("top1"),
                "val_loss": val.get(node.name, {}).get("loss"),
                "lr": stats.get(node.name, {}).get("lr"),
                "frozen": node.frozen,
                "gates": {
                    ("labels" if j == node.index else names[j]): round(w, 6)
                    for j, w in enumerate(weights[node.index])
                    if w > 0
                },
            }
            rows[node.name] = row
            top1 = row["val_top1"]
            best = self.best.get(node.name)
            if top1 is not None and not node.frozen and (best is None or top1 >= best["val_top1"]):
                self.best[node.name] = {"val_top1": top1, "epoch": epoch}
                ckpt.save(
                    ckpt.node_checkpoint(node, program.input_shape[0], epoch, top1),
                    self.run_dir / "best" / f"{node.name}.pt",
                )
        return rows

    def _epoch_line(self, epoch: int, rows: dict[str, dict[str, Any]]) -> str:
        parts = []
        for name, row in rows.items():
            if row["frozen"]:
                continue
            val = f" val {row['val_top1']:.2f}%" if row["val_top1"] is not None else ""
            parts.append(
                f"{name}: loss {row['train_loss']:.3f} train {row['train_top1']:.2f}%{val}"
            )
        return f"epoch {epoch + 1}/{self.spec.train.epochs}  " + "  |  ".join(parts)

    def cleanup(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
