"""The engine on a mesh of processes (torch.distributed; see ``mesh.py`` and
docs/distributed.md).

Each rank trains the nodes placed on its group, on its data shard, and runs the frozen teachers
its nodes read. A step: forward the local nodes (and teachers); exchange the detached logits of
every trained node (and the taps that cross groups) with ``all_gather`` over the graph group,
padded to one size; compute the losses of the local receivers exactly as the single-process
step does (masks of per-sample gates from the gathered logits); one backward (gradients of a
node averaged over its replicas by DistributedDataParallel); local optimizer steps. Every rank
issues the same collectives in the same order whatever the gates say. Metrics, the broken-loss
flag and evaluation are summed over all ranks, so every rank sees the same numbers.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .core import Engine
from .mesh import Mesh
from .metrics import NonFiniteLossError
from .program import Program, RuntimeNode
from .step import Features, StepPlan, edge_losses

Item = tuple[int, str | None]  # (node index, tap or None for its logits)


class MeshCoordinator:
    """Writers and agreement on a mesh: rank 0 writes the run's files, replica 0 of a node's
    group writes the node's."""

    def __init__(self, mesh: Mesh, device: torch.device) -> None:
        # collectives on the backend's device (nccl serves CUDA tensors only)
        self.mesh, self.rank, self.world, self.device = mesh, mesh.rank, mesh.world, device

    def is_writer(self) -> bool:
        return self.rank == 0

    def owns(self, node: int) -> bool:
        return node in self.mesh.placement and self.mesh.owner(node) == self.rank

    def agree(self, flag: bool) -> bool:
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


class _Local(NamedTuple):
    plan: StepPlan
    columns: Tensor  # the local edges' columns in the weights table
    rows: Tensor  # this rank's trained nodes' rows in the plan's logits
    node_ids: Tensor  # and their node indices
    sends: list[list[Item]]  # what each group sends in the exchange (``_sends``)


class _WithAdapters(nn.Module):
    """A node's model and its edges' adapters as one module, so that one DDP averages both."""

    def __init__(self, node: RuntimeNode) -> None:
        super().__init__()
        self.model, self.adapters = node.model, node.adapters

    def forward(self, x: Tensor) -> Any:
        return self.model(x)


class DistributedEngine(Engine):
    def __init__(
        self,
        program: Program,
        mesh: Mesh,
        graph_group: Any = None,
        replica_group: Any = None,
    ) -> None:
        super().__init__(program)
        self.mesh, self.graph_group, self.replica_group = mesh, graph_group, replica_group
        self.coordinator = MeshCoordinator(mesh, self.device)
        # per open set: the local plan and its index tensors, made once (no host copy per step)
        self._local: dict[tuple[int, ...], _Local] = {}
        self.trained = [n for n in self.nodes if not n.frozen]
        self.trainable = [n for n in self.trained if mesh.local(n.index)]
        self._ddp: dict[int, nn.Module] = {}
        if mesh.replicas > 1:
            from torch.nn.parallel import DistributedDataParallel

            for n in self.trainable:
                ids = [n.device] if n.device.type == "cuda" else None
                self._ddp[n.index] = DistributedDataParallel(
                    _WithAdapters(n), device_ids=ids, process_group=replica_group
                )
        self.exchange_seconds = 0.0  # time spent in the exchange (ktg bench reports it)
        self.exchange_bytes = 0  # bytes received per step by the last exchange

    # ------------------------------------------------------------------ the step

    def _call(self, node: RuntimeNode, x: Tensor) -> Any:
        ddp = self._ddp.get(node.index)
        return ddp(x) if ddp is not None and node.model.training else node.model(x)

    def _local_plan(self, opened: tuple[int, ...]) -> _Local:
        """The plan of the edges into local receivers, their columns in the weights table, and
        the rows and indices of this rank's trained nodes in the plan's logits."""
        local = self._local.get(opened)
        if local is None:
            edges, dev = self.program.edges, self.device
            cols = [c for c, i in enumerate(opened) if self.mesh.local(edges[i].receiver)]
            plan = self._plan(tuple(opened[c] for c in cols))
            rows = [plan.position[n.index] for n in self.trainable]
            index = [n.index for n in self.trainable]

            def tensor(values: list[int]) -> Tensor:
                return torch.tensor(values, dtype=torch.long, device=dev)

            sends = [self._sends(opened, g) for g in range(self.mesh.groups)]
            local = _Local(plan, tensor(cols), tensor(rows), tensor(index), sends)
            if len(self._local) >= 4 * self.plan_cache_size:
                self._local.clear()
            self._local[opened] = local
        return local

    def _sends(self, opened: tuple[int, ...], group: int) -> list[Item]:
        """What ``group`` sends at this time: the logits of each of its trained nodes, then
        those of the teachers it is home to that receivers of other groups read, then the taps
        its nodes give to receivers of other groups (the same list on every rank)."""
        items: list[Item] = [(n, None) for n in self.mesh.nodes_of(group)]
        teachers, taps = set(), set()
        for i in opened:
            e = self.program.edges[i]
            if self.mesh.placement.get(e.receiver) == group:
                continue  # read here: nothing to send
            if self.mesh.homes.get(e.sender) == group:
                teachers.add((e.sender, None))
            elif e.sender_tap is not None and self.mesh.placement.get(e.sender) == group:
                taps.add((e.sender, e.sender_tap))
        return items + sorted(teachers) + sorted(taps)

    def train_step(
        self, x: Tensor, y: Tensor, epoch: int, step: int | None = None
    ) -> dict[str, Tensor]:
        x, y = self._inputs(x, y)
        local, weights, outs, features = self._mesh_forward(x, epoch, step)
        plan = local.plan
        logits = torch.stack([outs[i].float() for i in plan.forward])
        losses, per_edge = edge_losses(plan, logits, y, weights, len(self.nodes), features)
        self._backward(plan, losses, logits)
        for i in plan.stepping:
            self._optimizer_step(self.nodes[i])
        self._step_schedulers()
        self.meter.add(local.node_ids, logits.index_select(0, local.rows), y, losses)
        self.meter.add_edges(plan.edge_index, per_edge, weights, y.shape[0])
        return {n.name: losses[n.index].detach() for n in self.trainable}

    def _mesh_forward(
        self, x: Tensor, epoch: int, step: int | None
    ) -> tuple[_Local, Tensor, dict[int, Tensor], Features]:
        """The local plan, its edges' weights, and every output its losses read (forwarded
        here or exchanged); gradients zeroed first."""
        opened, table, row = self._weights(epoch, step)
        local = self._local_plan(opened)
        self._start_training()
        outs, features = self._forward_local(local.plan, local.sends[self.mesh.group], x)
        self._exchange(local.sends, outs, features, x.shape[0])
        return local, table[row].index_select(0, local.columns), outs, features

    def _forward_local(
        self, plan: StepPlan, sends: list[Item], x: Tensor
    ) -> tuple[dict[int, Tensor], Features]:
        """This rank's nodes, the teachers its receivers read (unless another group is their
        home) and those it sends, with the taps read here or sent to other groups."""
        mesh = self.mesh
        local = [
            i
            for i in plan.forward
            if mesh.local(i) or (self.nodes[i].frozen and mesh.runs_teacher(i))
        ]
        local += sorted({i for i, tap in sends if tap is None and i not in local})  # teachers
        taps = {i: dict(plan.taps.get(i, {})) for i in local}
        for index, tap in sends:
            if tap is not None:
                taps[index][tap] = self.nodes[index].taps[tap]
        outs: dict[int, Tensor] = {}
        features: Features = {}
        with self.autocast():
            for i in local:
                out = self.forward_node(self.nodes[i], x, True, taps.get(i))
                outs[i] = out.logits
                features.update({(i, t): f for t, f in out.features.items()})
        return outs, features

    def _exchange(
        self, layouts: list[list[Item]], outs: dict[int, Tensor], features: Features, b: int
    ) -> None:
        """all_gather every group's sends (``layouts``) over the graph group; the other groups'
        logits and taps land in ``outs`` and ``features`` (detached: knowledge flows, gradient
        does not)."""
        if self.mesh.groups == 1:
            return
        tick = time.perf_counter()
        sizes = [[b * self._width(item) for item in layout] for layout in layouts]
        length = max(sum(s) for s in sizes)
        mine = [self._value(item, outs, features).reshape(-1) for item in layouts[self.mesh.group]]
        buf = torch.zeros(length, dtype=torch.float32, device=self.device)
        if mine:
            flat = torch.cat([m.float() for m in mine])
            buf[: flat.numel()] = flat.detach()
        gathered = [torch.empty_like(buf) for _ in range(self.mesh.groups)]
        dist.all_gather(gathered, buf, group=self.graph_group)
        for g, (layout, size) in enumerate(zip(layouts, sizes, strict=True)):
            if g == self.mesh.group:
                continue
            offset = 0
            for item, n in zip(layout, size, strict=True):
                value = gathered[g][offset : offset + n].view(b, *self._shape(item))
                offset += n
                if item[1] is None:
                    outs[item[0]] = value
                else:
                    features[(item[0], item[1])] = value
        self.exchange_bytes = 4 * length * (self.mesh.groups - 1)
        self.exchange_seconds += time.perf_counter() - tick

    def _shape(self, item: Item) -> tuple[int, ...]:
        node = self.nodes[item[0]]
        return (node.num_classes,) if item[1] is None else node.tap_shapes[item[1]]

    def _width(self, item: Item) -> int:
        return math.prod(self._shape(item))

    @staticmethod
    def _value(item: Item, outs: dict[int, Tensor], features: Features) -> Tensor:
        return outs[item[0]] if item[1] is None else features[(item[0], item[1])]

    def _backward(self, plan: StepPlan, losses: Tensor, logits: Tensor) -> None:
        """One backward of the local losses (each scaled by its node's fp16 loss scaler).
        With replicas, every parameter of every local node must get a gradient in every
        backward (DDP's rule): a node without an open edge, an adapter whose edge is closed,
        layers after a tap that is the only thing read: each adds a zero that reaches them."""
        parts = []
        for i in plan.stepping:
            scaler = self.nodes[i].scaler
            parts.append(scaler.scale(losses[i]) if scaler is not None else losses[i])
        if self._ddp:
            for n in self.trainable:
                zero = logits[plan.position[n.index]].sum() * 0.0
                parts.append(zero + sum(p.sum() * 0.0 for p in n.adapters.parameters()))
        if parts:
            torch.stack(parts).sum().backward()

    def _step_schedulers(self) -> None:
        import warnings

        from .core import _SCHEDULER_ORDER

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_SCHEDULER_ORDER)
            for node in self.trainable:
                if node.scheduler_interval == "step" and node.scheduler is not None:
                    node.scheduler.step()

    # ------------------------------------------------------------------ metrics, evaluation

    def read_metrics(self, epoch: int) -> dict[str, dict[str, Any]]:
        """The epoch's metrics of every trained node (summed over all ranks)."""
        m = self.meter
        bad = m.bad.to(torch.int32)
        for t in (m.loss_sum, m.correct, m.edges):  # an edge's sums: its receiver's ranks'
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        seen = torch.tensor([m.seen], dtype=torch.long, device=self.device)
        dist.all_reduce(seen)
        m.bad, m.seen = bad.bool(), int(seen.item()) // self.mesh.groups
        lrs: dict[str, float] = {}
        for part in self.coordinator.gather({n.name: n.lr for n in self.trainable}):
            lrs.update(part)
        broken = self.nonfinite_nodes()
        loss, correct, total = m.totals()
        edges = self.program.by_receiver(m.edge_means())
        total = max(total, 1)
        m.reset()
        if broken:
            raise NonFiniteLossError(broken, epoch, self.program.epochs, self.program.precision)
        return {
            n.name: {
                "train_loss": loss[n.index] / total,
                "train_top1": 100.0 * correct[n.index] / total,
                "lr": lrs[n.name],
                "edges": edges[n.index],
            }
            for n in self.trained
        }

    def metrics_state(self) -> dict[str, Any]:
        """The partial epoch's sums over every rank (for a checkpoint taken mid-epoch)."""
        m = self.meter
        loss, correct, bad = m.loss_sum.clone(), m.correct.clone(), m.bad.to(torch.int32)
        edges = m.edges.clone()
        seen = torch.tensor([m.seen], dtype=torch.long, device=self.device)
        for t in (loss, correct, edges, seen):
            dist.all_reduce(t)
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        return {
            "loss_sum": loss.cpu(),
            "correct": correct.cpu(),
            "bad": bad.bool().cpu(),
            "edges": edges.cpu(),
            "seen": int(seen.item()) // self.mesh.groups,
        }

    def load_metrics_state(self, state: dict[str, Any]) -> None:
        """The sums go to rank 0 (the epoch's end adds every rank's); every rank counts its
        share of the samples seen."""
        if self.mesh.rank == 0:
            self.meter.load_state(state)
        else:
            self.meter.reset()
        self.meter.seen = int(state["seen"]) // self.mesh.replicas

    def has_nonfinite(self) -> bool:
        return self.coordinator.agree(bool(self.meter.bad.any()))

    def nonfinite_nodes(self) -> list[str]:
        """The nodes whose loss broke on any rank (every rank names the same ones)."""
        bad = self.meter.bad.to(torch.int32)
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        return [self.nodes[i].name for i, b in enumerate(bad.cpu().tolist()) if b]

    def _evaluated(self) -> list[int]:
        """Local trained nodes; group 0 also evaluates the frozen teachers."""
        frozen = [n.index for n in self.nodes if n.frozen] if self.mesh.group == 0 else []
        return [n.index for n in self.trainable] + frozen

    def _reduce_eval(self, *sums: Tensor) -> tuple[Tensor, ...]:
        for t in sums:
            dist.all_reduce(t)
        return sums

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The state of the nodes this rank trains (each node's owner writes it)."""
        full = super().state_dict()
        return {n.name: full[n.name] for n in self.trainable}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = [n.name for n in self.trainable if n.name not in state]
        if missing:
            from ..errors import KtgRuntimeError

            raise KtgRuntimeError(f"the checkpoint has no state for node(s) {missing}")
        for n in self.trainable:
            self._load_node(n, state[n.name])
