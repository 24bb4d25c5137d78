"""``ktg bench`` of a self-supervised graph: its variants, fed two views per sample.

* ``baseline``: the original KnowledgeTransferGraph's deep-collaborative-learning SimCLR loop
  (``KnowledgeTransferGraph.train_on_batch`` with its SimCLR models) written plainly: per node a
  forward of both views through encoder and projector; then per receiver a Python loop over its
  edges (NT-Xent on the self edge, the views loss against each sender's detached views, each
  times its gate's weight), a per-node backward and optimizer step through a GradScaler on CUDA,
  ``.item()`` of the loss every step; fp16 autocast on CUDA, fp32 on the CPU. The formulas are
  the project's own losses (``components/losses/views.py``), so the comparison is of the loop.
  One difference from the original, on purpose: the two views go through a node as one batch of
  2B (view 1, then view 2), as ktg's nodes define the forward; the original forwards view 1 and
  view 2 one after the other, which with BatchNorm is another computation (per-view batch
  statistics), and the updated weights could not be compared;
* ``ideal``: each trainable node's isolated SimCLR step (its self edge's NT-Xent on its own two
  views, backward, step), summed: what N SimCLR models cost with no graph at all.

The engine's variants are ``variants.engine_step`` (which picks the self-supervised engine).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ..compiler import Program, make_optimizer
from ..components.data import DatasetInfo
from ..components.losses.views import NTXent
from ..engine.ssl import as_views
from ..errors import KtgRuntimeError
from .measure import Step

__all__ = ["SslBaseline", "random_view_batches", "ssl_ideal_step", "unsupported_edges"]


def random_view_batches(
    info: DatasetInfo, batch: int, device: torch.device, n: int = 4
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A few fixed random two-view batches, ``x [B, 2, C, H, W]`` and ``y [B]`` as
    ``TwoViewBatches`` yields them (normalised floats; the labels are never trained on)."""
    assert info.num_classes is not None and info.input_shape is not None
    g = torch.Generator().manual_seed(0)
    return [
        (
            torch.randn(batch, 2, *info.input_shape, generator=g).to(device),
            torch.randint(0, info.num_classes, (batch,), generator=g).to(device),
        )
        for _ in range(n)
    ]


def unsupported_edges(program: Program) -> list[str]:
    """The edges the plain loop does not write (feature edges between taps), by name."""

    def end(node: int, tap: str | None) -> str:
        return program.names[node] + (f".{tap}" if tap else "")

    return [
        f"{end(e.sender, e.sender_tap)} -> {end(e.receiver, e.receiver_tap)}"
        for e in program.edges
        if e.on_features or not e.views
    ]


def _views(out: torch.Tensor) -> torch.Tensor:
    """A node's projections of a 2B forward ``[2B, D]`` as its views ``[B, 2, D]``."""
    return as_views(out.unsqueeze(0))[0]


class SslBaseline:
    """The original's SimCLR deep-collaborative-learning ``train_on_batch``, for the compiled
    graph's edges (see the module docstring). ``models`` are its own copies of the program's
    initial weights; calling it is one training step on ``(x [B, 2, C, H, W], y)``."""

    def __init__(self, program: Program) -> None:
        skipped = unsupported_edges(program)
        if skipped:
            raise KtgRuntimeError(
                "the self-supervised baseline is the original's loop over views losses; it does "
                f"not write feature edges ({', '.join(skipped)}): measure this spec with "
                "--variants engine,ideal,epoch,features"
            )
        self.nodes = list(program.nodes.values())
        self.models = [
            copy.deepcopy(n.model).to(memory_format=torch.contiguous_format) for n in self.nodes
        ]
        self.opts: list[Any] = []
        for node, model in zip(self.nodes, self.models, strict=True):
            ref = node.config.optimizer or program.spec.defaults.optimizer
            self.opts.append(
                None if node.frozen else make_optimizer(ref, model.parameters(), "default")
            )
        self.cuda = program.device.type == "cuda"
        self.scalers = [torch.amp.GradScaler("cuda", enabled=self.cuda) for _ in self.nodes]
        self.matrix = program.edge_matrix()
        self.t, self.T = program.time(program.epochs // 2)  # mid-training: both ways open
        self.loss_sums = [0.0 for _ in self.nodes]

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        both = torch.cat([x[:, 0], x[:, 1]])  # view 1, then view 2
        views = []
        for node, model in zip(self.nodes, self.models, strict=True):
            model.train(not node.frozen)
            with (
                torch.set_grad_enabled(not node.frozen),
                torch.autocast("cuda", dtype=torch.float16, enabled=self.cuda),
            ):
                views.append(_views(model(both)))
        for i, opt in enumerate(self.opts):
            if opt is None:
                continue
            loss = self._node_loss(i, views)
            if loss is not None and loss.item() != 0:
                scaler = self.scalers[i]
                scaler.scale(loss).backward()
                scaler.step(opt)
                opt.zero_grad()
                scaler.update()
            self.loss_sums[i] += float(loss.item()) if loss is not None else 0.0

    def _node_loss(self, i: int, views: list[torch.Tensor]) -> torch.Tensor | None:
        """Node i's loss: the gated sum of its incoming edges, edge by edge."""
        loss = None
        peers = []
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.cuda):
            for j, edge in enumerate(self.matrix[i]):
                if edge is None:
                    continue
                w = edge.gate.weight(self.t, self.T) * edge.scale
                if j == i:  # the self edge: NT-Xent on the node's own two views
                    loss = edge.loss.per_sample(views[i], views[i]).mean() * w
                else:
                    sender = views[j].detach()
                    peers.append(edge.loss.per_sample(views[i], sender).mean() * w)
            if peers:
                peer = torch.stack(peers).sum()
                loss = peer if loss is None else loss + peer
        return loss


def ssl_ideal_step(program: Program) -> Step:
    """Each trainable node's SimCLR step alone (its self edge's loss, NT-Xent at the spec's
    temperature; the default NT-Xent where it has none), one after another: no graph."""
    nodes = [n for n in program.nodes.values() if not n.frozen]
    models = [copy.deepcopy(n.model) for n in nodes]
    opts = []
    losses = []
    matrix = program.edge_matrix()
    for node, model in zip(nodes, models, strict=True):
        ref = node.config.optimizer or program.spec.defaults.optimizer
        opts.append(make_optimizer(ref, model.parameters(), "default"))
        own = matrix[node.index][node.index]
        losses.append(own.loss if own is not None else NTXent("nt_xent"))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(program.precision)
    dev = program.device
    scaler = torch.amp.GradScaler("cuda", enabled=program.precision == "fp16")

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        both = torch.cat([x[:, 0], x[:, 1]])
        if program.channels_last:
            both = both.contiguous(memory_format=torch.channels_last)
        for model, opt, loss_fn in zip(models, opts, losses, strict=True):
            model.train()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                views = _views(model(both).float())
                loss = loss_fn.per_sample(views, views).mean()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return step
