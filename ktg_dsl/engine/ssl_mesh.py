"""A self-supervised program on a mesh of graph groups (docs/distributed.md, ``--nproc``):
every rank forwards its nodes on the same two views (2B), the graph groups exchange the
nodes' detached projections as the supervised mesh exchanges logits (``_exchange``, rows of
width ``dim``), and each rank computes its receivers' views losses as one process does
(``SelfSupervisedEngine``). kNN evaluation: each rank scores its own nodes; the scores are
gathered so that every rank holds all of them.

Data-parallel replicas (``data_parallel`` above 1) are not built: NT-Xent would need the
negatives of every replica (an ``all_gather`` that keeps the gradient) and the similarity
matrices the whole batch; ``run.distributed.plan_mesh`` refuses them before training."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ..errors import KtgRuntimeError
from .distributed import DistributedEngine
from .mesh import Mesh
from .program import Program
from .ssl import SelfSupervisedEngine, as_views, contrastive_guess
from .step import edge_losses


class DistributedSelfSupervisedEngine(SelfSupervisedEngine, DistributedEngine):
    """The distributed engine's exchange and metrics, the self-supervised step and kNN."""

    def __init__(
        self, program: Program, mesh: Mesh, graph_group: Any = None, replica_group: Any = None
    ) -> None:
        if program.knn is None or mesh.replicas > 1:
            raise KtgRuntimeError(
                "the self-supervised mesh engine runs self-supervised programs on graph "
                "groups only (data_parallel 1)"
            )
        DistributedEngine.__init__(self, program, mesh, graph_group, replica_group)
        self.knn = program.knn

    def train_step(
        self, x: Tensor, y: Tensor, epoch: int, step: int | None = None
    ) -> dict[str, Tensor]:
        x, _ = self._two_views(x, y)
        opened, table, row = self._weights(epoch, step)
        local = self._local_plan(opened)
        plan = local.plan
        weights = table[row].index_select(0, local.columns)
        self._set_mode("train")
        for node in self.trainable:
            assert node.optimizer is not None
            node.optimizer.zero_grad(set_to_none=True)
        outs, features = self._forward_local(plan, local.sends[self.mesh.group], x)
        self._exchange(local.sends, outs, features, x.shape[0])
        stacked = torch.stack([outs[i].float() for i in plan.forward])
        views = as_views(stacked)
        blind = torch.zeros(views.shape[1], dtype=torch.long, device=views.device)
        losses, per_edge = edge_losses(plan, views, blind, weights, len(self.nodes), features)
        self._backward(plan, losses, stacked)
        for i in plan.stepping:
            self._optimizer_step(self.nodes[i])
        self._step_schedulers()
        sim, partner = contrastive_guess(views.index_select(0, local.rows))
        self.meter.add(local.node_ids, sim, partner, losses)
        self.meter.add_edges(plan.edge_index, per_edge, weights, partner.shape[0])
        return {n.name: losses[n.index].detach() for n in self.trainable}

    def evaluate_metrics(
        self, batches: Iterable[tuple[Tensor, Tensor]]
    ) -> dict[str, dict[str, float]]:
        """This rank's nodes' kNN scores, then every rank's (each rank holds them all)."""
        mine = SelfSupervisedEngine.evaluate_metrics(self, batches)
        out: dict[str, dict[str, float]] = {}
        for part in self.coordinator.gather(mine):
            out.update(part)
        return out
