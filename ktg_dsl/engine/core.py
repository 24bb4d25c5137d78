"""The single-process engine: drive a compiled KTG by hand or from a recipe.

    engine = Engine(program)
    for epoch in range(program.epochs):
        for x, y in batches:
            engine.train_step(x, y, epoch)        # losses stay on the device
        stats = engine.end_epoch(epoch)           # one host sync: loss, top-1, lr per node
        top1 = engine.evaluate(val_batches)       # {node: top-1 %}

The step follows the original KTG: every node forwards the same batch, node i's loss is
sum_j gate_ij(t) * loss_ij with senders detached, each node's optimizer steps on its own loss;
as ONE backward over the sum of node losses (``step.py``): the same, as no gradient crosses an
edge. Frozen teachers run in eval mode without autograd (the original: train mode).
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ..errors import KtgRuntimeError
from .contracts import NodeOutput
from .mesh import Coordinator, Solo
from .metrics import EpochMeter, NonFiniteLossError, check_labels
from .program import Program, RuntimeNode
from .step import (
    Features,
    PlanCacheInfo,
    StepPlan,
    StepSummary,
    build_plan,
    edge_losses,
    open_set,
    stacked_cross_entropy,
    summarize,
)
from .taps import capture

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_SCHEDULER_ORDER = "Detected call of `lr_scheduler.step"


class Engine:
    """The single-process engine: every node on ``program.device``, one fused step."""

    plan_cache_size = 16  # distinct sets of open edges kept; linear gates need one

    def __init__(self, program: Program) -> None:
        self.program = program
        self.nodes: list[RuntimeNode] = list(program.nodes.values())
        self.device = program.device
        self.trainable: list[RuntimeNode] = [n for n in self.nodes if not n.frozen]
        self._plans: OrderedDict[tuple[int, ...], StepPlan] = OrderedDict()
        self._hits = self._misses = 0
        self._table_key: tuple[Any, ...] | None = None
        self._table: tuple[tuple[int, ...], Tensor] = ((), torch.zeros(0))
        self.meter = EpochMeter(len(self.nodes), self.device, len(program.edges))
        self.coordinator: Coordinator = Solo()

    # ------------------------------------------------------------------ helpers

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = _AMP_DTYPES.get(self.program.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _set_mode(self, mode: str) -> None:
        # model.train()/eval() walks every module, so only when a model's own flag says it is
        # in the wrong mode (whoever set it: the engine, or user code between steps).
        for node in self.nodes:
            want = mode == "train" and not node.frozen
            if node.model.training != want:
                node.model.train(want)
            if len(node.adapters) and node.adapters.training != want:
                node.adapters.train(want)

    def _weights(self, epoch: int, step: int | None) -> tuple[tuple[int, ...], Tensor, int]:
        """The open edges, their weight table on the device and the row in force. The table
        is built once per epoch: one row, or one per step when gates move every step (so a
        step copies nothing from the host)."""
        program = self.program
        per_step = program.gate_unit == "step"
        key = (epoch, per_step)
        if key != self._table_key:
            steps = (program.steps_per_epoch or 1) if per_step else 1
            rows = [program.edge_weights(epoch, s if per_step else None) for s in range(steps)]
            opened = open_set(rows)
            table = torch.tensor(
                [[row[i] for i in opened] for row in rows], dtype=torch.float32, device=self.device
            )
            self._table_key, self._table = key, (opened, table)
        opened, table = self._table
        return opened, table, (step or 0) if per_step else 0

    def _plan(self, opened: tuple[int, ...]) -> StepPlan:
        plan = self._plans.get(opened)
        if plan is not None:
            self._hits += 1
            self._plans.move_to_end(opened)
            return plan
        self._misses += 1
        plan = self._plans[opened] = build_plan(self.program, opened, self.device)
        while len(self._plans) > self.plan_cache_size:
            self._plans.popitem(last=False)
        return plan

    def plan_cache_info(self) -> PlanCacheInfo:
        return PlanCacheInfo(self._hits, self._misses, len(self._plans), self.plan_cache_size)

    def step_summary(self, epoch: int, step: int | None = None) -> StepSummary:
        """What ``train_step`` computes at this time (for inspection and tests)."""
        opened, table, row = self._weights(epoch, step)
        plan = build_plan(self.program, opened, self.device)
        return summarize(self.program, plan, table[row].tolist())

    def _inputs(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.program.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if y.dtype != torch.long:
            y = y.long()
        check_labels(y, self.program.num_classes)
        return x, y

    def forward_node(
        self, node: RuntimeNode, x: Tensor, train: bool, taps: dict[str, str] | None = None
    ) -> NodeOutput:
        """One node's output, with the features of ``taps`` (read by forward hooks registered
        for this forward only); frozen nodes (and every node when not training) without
        grad."""
        grad = contextlib.nullcontext() if train and not node.frozen else torch.no_grad()
        if node.device != x.device:  # a node on its own device (nodes.<name>.device)
            x = x.to(node.device, non_blocking=True)
        with grad, capture(node.model, taps or {}) as features:
            z = self._call(node, x)
        if taps and len(features) < len(taps):
            missing = next(t for t in taps if t not in features)
            raise KtgRuntimeError(
                f"node '{node.name}': its tap '{missing}' ({taps[missing]}) did not run in "
                "this forward"
            )
        if not isinstance(z, Tensor) or z.shape != (x.shape[0], node.num_classes):
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise KtgRuntimeError(
                f"node '{node.name}' returned {shape} for a batch of "
                f"{x.shape[0]}, expected ({x.shape[0]}, "
                f"{node.num_classes})"
            )
        return NodeOutput(z, dict(features))

    def _call(self, node: RuntimeNode, x: Tensor) -> Any:
        return node.model(x)

    def _forward(
        self, plan: StepPlan | None, nodes: list[int], x: Tensor, train: bool
    ) -> tuple[Tensor, Features]:
        """Stacked logits ``[len(nodes), B, C]``, and the taps the plan's edges read."""
        outs, features = [], {}
        for i in nodes:
            out = self.forward_node(self.nodes[i], x, train, plan.taps.get(i) if plan else None)
            # the losses are computed on the step's device (a no-op when the node is there)
            outs.append(out.logits.to(self.device))
            features.update({(i, tap): f.to(self.device) for tap, f in out.features.items()})
        return torch.stack(outs), features

    # ------------------------------------------------------------------ training

    def train_step(
        self, x: Tensor, y: Tensor, epoch: int, step: int | None = None
    ) -> dict[str, Tensor]:
        """One step of every node on batch (x, y) at ``epoch`` (and ``step`` within it, for
        per-step gates). Returns each trained node's loss as a 0-d tensor on the device; no
        host synchronisation happens here."""
        x, y = self._inputs(x, y)
        plan, weights, logits, features = self._forward_step(x, epoch, step)
        losses, per_edge = edge_losses(plan, logits, y, weights, len(self.nodes), features)
        self._update(plan, losses)
        self.meter.add(plan.forward_index, logits, y, losses)
        self.meter.add_edges(plan.edge_index, per_edge, weights, y.shape[0])
        return {n.name: losses[n.index].detach() for n in self.trainable}

    def _start_training(self) -> None:
        """Train mode, and every trainable node's gradients cleared (a step begins)."""
        self._set_mode("train")
        for node in self.trainable:
            assert node.optimizer is not None
            node.optimizer.zero_grad(set_to_none=True)

    def _forward_step(
        self, x: Tensor, epoch: int, step: int | None
    ) -> tuple[StepPlan, Tensor, Tensor, Features]:
        """A step's plan, open edges' weights, and forward (gradients zeroed first)."""
        opened, table, row = self._weights(epoch, step)
        plan = self._plan(opened)
        self._start_training()
        with self.autocast():
            out, features = self._forward(plan, plan.forward, x, train=True)
        return plan, table[row], out, features

    def _update(self, plan: StepPlan, losses: Tensor) -> None:
        """ONE backward of the stepping nodes' losses, their optimizer steps, and the
        schedulers that step every batch."""
        total = self._scaled_total(plan, losses)
        if total is not None:
            total.backward()
        for i in plan.stepping:
            self._optimizer_step(self.nodes[i])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_SCHEDULER_ORDER)  # see end_epoch
            for node in self.trainable:
                if node.scheduler_interval == "step" and node.scheduler is not None:
                    node.scheduler.step()

    def _scaled_total(self, plan: StepPlan, losses: Tensor) -> Tensor | None:
        if not plan.stepping:
            return None
        parts = []
        for i in plan.stepping:
            scaler = self.nodes[i].scaler
            parts.append(scaler.scale(losses[i]) if scaler is not None else losses[i])
        return torch.stack(parts).sum() if len(parts) > 1 else parts[0]

    def _optimizer_step(self, node: RuntimeNode) -> None:
        assert node.optimizer is not None
        clip = self.program.grad_clip
        if node.scaler is not None:
            if clip:
                node.scaler.unscale_(node.optimizer)
                torch.nn.utils.clip_grad_norm_(node.model.parameters(), clip)
            node.scaler.step(node.optimizer)
            node.scaler.update()
        else:
            if clip:
                torch.nn.utils.clip_grad_norm_(node.model.parameters(), clip)
            node.optimizer.step()

    def end_epoch(self, epoch: int) -> dict[str, dict[str, Any]]:
        """Read (one host sync) and reset the epoch's training metrics, then step the
        per-epoch schedulers. Raises NonFiniteLossError naming the nodes whose loss broke."""
        stats = self.read_metrics(epoch)
        with warnings.catch_warnings():
            # A node whose edges were all closed this epoch never stepped its optimizer;
            # its schedule still advances with the epoch, as in the original.
            warnings.filterwarnings("ignore", message=_SCHEDULER_ORDER)
            for node in self.nodes:
                if node.scheduler is not None and node.scheduler_interval == "epoch":
                    node.scheduler.step()
        return stats

    # ------------------------------------------------------------------ metrics

    def has_nonfinite(self) -> bool:
        """Whether a loss broke since the last read (one host sync)."""
        return self.meter.has_nonfinite()

    def raise_if_nonfinite(self, epoch: int) -> None:
        """NonFiniteLossError naming the nodes whose loss broke since the last read."""
        if self.has_nonfinite():
            precision = self.program.precision
            raise NonFiniteLossError(self.nonfinite_nodes(), epoch, self.program.epochs, precision)

    def nonfinite_nodes(self) -> list[str]:
        return [self.nodes[i].name for i in self.meter.broken()]

    def metrics_state(self) -> dict[str, Any]:
        """The partial epoch's metric sums (for a checkpoint taken mid-epoch)."""
        return self.meter.state()

    def load_metrics_state(self, state: dict[str, Any]) -> None:
        self.meter.load_state(state)

    def peek(self) -> dict[str, tuple[float, float]]:
        """(mean loss, top-1 %) so far this epoch, per trained node: one host sync, for a
        progress display."""
        loss, top1 = self.meter.means()
        return {n.name: (loss[n.index], top1[n.index]) for n in self.trainable}

    def read_metrics(self, epoch: int) -> dict[str, dict[str, Any]]:
        """The epoch's train_loss, train_top1, lr and edge terms (``edges``: see
        ``Program.by_receiver``) per trained node; resets the sums."""
        broken = self.nonfinite_nodes()
        loss, correct, seen = self.meter.totals()
        edges = self.program.by_receiver(self.meter.edge_means())
        seen = max(seen, 1)
        self.meter.reset()
        if broken:
            raise NonFiniteLossError(broken, epoch, self.program.epochs, self.program.precision)
        return {
            n.name: {
                "train_loss": loss[n.index] / seen,
                "train_top1": 100.0 * correct[n.index] / seen,
                "lr": n.lr,
                "edges": edges[n.index],
            }
            for n in self.trainable
        }

    # ------------------------------------------------------------------ evaluation

    def evaluate_metrics(
        self, batches: Iterable[tuple[Tensor, Tensor]]
    ) -> dict[str, dict[str, float]]:
        """Top-1 (%) and cross-entropy of every node on ``batches`` (eval mode, no grad)."""
        self._set_mode("eval")
        n = len(self.nodes)
        correct = torch.zeros(n, dtype=torch.long, device=self.device)
        ce = torch.zeros(n, dtype=torch.float64, device=self.device)
        count = torch.zeros(n, dtype=torch.long, device=self.device)
        nodes = self._evaluated()
        rows = torch.tensor(nodes, dtype=torch.long, device=self.device)
        with torch.no_grad():
            for x, y in batches:
                x, y = self._inputs(x, y)
                with self.autocast():
                    logits, _ = self._forward(None, nodes, x, train=False)
                z = logits.float()
                correct.index_add_(0, rows, (z.argmax(-1) == y).sum(-1))
                ce.index_add_(0, rows, stacked_cross_entropy(z, y).sum(-1).double())
                count.index_add_(0, rows, torch.full_like(rows, y.shape[0]))
        self._set_mode("train")
        correct, ce, count = self._reduce_eval(correct, ce, count)
        c, l_, k = correct.cpu(), ce.cpu(), count.cpu()
        if int(k.max()) == 0:
            raise KtgRuntimeError("evaluate() got no batches")
        return {
            node.name: {
                "top1": 100.0 * float(c[node.index]) / int(k[node.index]),
                "loss": float(l_[node.index]) / int(k[node.index]),
            }
            for node in self.nodes
            if int(k[node.index])
        }

    def _evaluated(self) -> list[int]:  # the nodes this process evaluates: all of them
        return list(range(len(self.nodes)))

    def _reduce_eval(self, *sums: Tensor) -> tuple[Tensor, ...]:
        """Sums over the processes (one process: as they are)."""
        return sums

    def evaluate(self, batches: Iterable[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """Top-1 accuracy (%) of every node on ``batches``."""
        return {k: v["top1"] for k, v in self.evaluate_metrics(batches).items()}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything a node needs to continue training: weights, optimizer, scheduler and
        scaler states, by node name."""
        out: dict[str, Any] = {}
        for n in self.nodes:
            out[n.name] = {
                "model": n.model.state_dict(),
                "adapters": n.adapters.state_dict(),
                "optimizer": n.optimizer.state_dict() if n.optimizer else None,
                "scheduler": n.scheduler.state_dict() if n.scheduler is not None else None,
                "scaler": n.scaler.state_dict() if n.scaler is not None else None,
            }
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Every trained node's state (a frozen teacher's is optional: its own checkpoint)."""
        missing = [n.name for n in self.trainable if n.name not in state]
        if missing:
            raise KtgRuntimeError(f"the checkpoint has no state for node(s) {missing}")
        for n in self.nodes:
            if n.name in state:
                self._load_node(n, state[n.name])

    @staticmethod
    def _load_node(n: RuntimeNode, s: dict[str, Any]) -> None:
        n.model.load_state_dict(s["model"])
        if len(n.adapters) or s.get("adapters"):
            n.adapters.load_state_dict(s.get("adapters", {}))
        if n.optimizer is not None and s.get("optimizer") is not None:
            n.optimizer.load_state_dict(s["optimizer"])
        if n.scheduler is not None and s.get("scheduler") is not None:
            n.scheduler.load_state_dict(s["scheduler"])
        if n.scaler is not None and s.get("scaler") is not None:
            n.scaler.load_state_dict(s["scaler"])
