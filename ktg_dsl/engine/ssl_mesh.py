"""A self-supervised program on a mesh (docs/distributed.md, ``--nproc``).

Graph groups: every rank forwards its nodes on its two views, the groups exchange the nodes'
detached projections as the supervised mesh exchanges logits (``_exchange``, rows of width
``dim``), and each rank computes its receivers' views losses as one process does.

Replicas (``data_parallel`` D above 1): each replica forwards its share of the batch, then the
views of every replica are gathered WITH their gradient (``torch.distributed.nn.functional.
all_gather``), so NT-Xent sees the negatives of the whole batch and the similarity matrices
are the whole batch's: every replica computes the one-process loss. The gather's backward sums
the replicas' gradients into each share (D times the loss's), and DistributedDataParallel
averages over the D replicas: the one-process gradient (BatchNorm aside: its statistics are
each replica's). kNN: each rank scores its own nodes on the whole bank; every rank then holds
every score."""

from __future__ import annotations

import warnings
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
        if program.knn is None:
            raise KtgRuntimeError("this engine runs self-supervised programs only")
        DistributedEngine.__init__(self, program, mesh, graph_group, replica_group)
        self.knn = program.knn

    def train_step(
        self, x: Tensor, y: Tensor, epoch: int, step: int | None = None
    ) -> dict[str, Tensor]:
        x, _ = self._two_views(x, y)
        local, weights, outs, features = self._mesh_forward(x, epoch, step)
        plan = local.plan
        stacked = torch.stack([outs[i].float() for i in plan.forward])
        views = self._whole_batch(as_views(stacked))
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

    def _whole_batch(self, views: Tensor) -> Tensor:
        """Every replica's views ``[M, b, 2, D]`` in replica order (the batch's order):
        ``[M, B, 2, D]``, the gradient kept."""
        if self.mesh.replicas == 1:
            return views
        from torch.distributed.nn.functional import all_gather

        with warnings.catch_warnings():
            # deprecated in favour of a private module's function; public, and tested here
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*all_gather")
            parts = all_gather(views.contiguous(), group=self.replica_group)
        return torch.cat(parts, dim=1)

    def evaluate_metrics(
        self, batches: Iterable[tuple[Tensor, Tensor]]
    ) -> dict[str, dict[str, float]]:
        """This rank's nodes' kNN scores, then every rank's (each rank holds them all)."""
        mine = SelfSupervisedEngine.evaluate_metrics(self, batches)
        out: dict[str, dict[str, float]] = {}
        for part in self.coordinator.gather(mine):
            out.update(part)
        return out
