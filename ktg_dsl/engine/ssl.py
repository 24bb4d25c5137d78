"""The self-supervised engine: the fused step on two views, and kNN evaluation.

A batch is ``x [B, 2, C, H, W]`` (two augmented views of each sample, ``TwoViewBatches``).
Every node forwards both views at once (one forward of ``2B``: view 1 then view 2), its
projections become its ``views [B, 2, D]``, and the graph's losses are computed from the
stacked views ``[M, B, 2, D]`` exactly as the supervised step computes them from stacked logits
(``step.edge_losses``: group kernels where a loss has one, then edge by edge), senders detached,
then ONE backward for all nodes. A self edge's views loss (NT-Xent) gets the receiver's own
views as its target; no loss ever sees the labels (the step passes zeros in their place).

``train_top1`` of a self-supervised node is its contrastive accuracy: how often the other view
of a sample is the most similar of the 2B - 1 other projections (cosine).

Evaluation (``evaluate_metrics(KnnData)``) runs every node in eval mode over the memory bank
(the training part, unaugmented) and the evaluated part, reads each node's features (its
``RuntimeNode.features`` module, the encoder before the projector) and scores the queries by
kNN (``knn.py``); ``top1`` and ``knn_top1`` carry it, ``probe_top1`` the optional linear probe.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import KtgRuntimeError
from .core import Engine
from .program import KnnSettings, Program
from .step import edge_losses

Batches = Iterable[tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class KnnData:
    """What kNN evaluation reads: the memory bank's batches and the queries' (both plain
    ``(x, y)`` batches, unaugmented). Iterating it yields the queries."""

    bank: Batches
    query: Batches

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return iter(self.query)


def as_views(out: Tensor) -> Tensor:
    """Stacked outputs of a ``2B`` forward ``[M, 2B, D]`` (view 1, then view 2) as views
    ``[M, B, 2, D]``."""
    m, twice, d = out.shape
    return out.view(m, 2, twice // 2, d).transpose(1, 2)


def contrastive_guess(views: Tensor) -> tuple[Tensor, Tensor]:
    """Each projection's cosine similarities to the other ``2B - 1`` ``[M, 2B, 2B]`` (itself
    excluded) and the index of its other view ``[2B]``: argmax == index is a correct guess."""
    with torch.no_grad():
        m, b, _, d = views.shape
        flat = F.normalize(views.detach().float().transpose(1, 2).reshape(m, 2 * b, d), dim=-1)
        sim = flat @ flat.transpose(1, 2)
        eye = torch.eye(2 * b, dtype=torch.bool, device=sim.device)
        sim = sim.masked_fill(eye, float("-inf"))
        partner = (torch.arange(2 * b, device=sim.device) + b) % (2 * b)
    return sim, partner


class SelfSupervisedEngine(Engine):
    """The single-process engine of a self-supervised program (``program.knn`` set)."""

    def __init__(self, program: Program) -> None:
        if program.knn is None:
            raise KtgRuntimeError("SelfSupervisedEngine runs self-supervised programs only")
        super().__init__(program)
        self.knn: KnnSettings = program.knn

    def _two_views(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 5 or x.shape[1] != 2:
            raise KtgRuntimeError(
                f"a self-supervised step takes two views per sample, x [B, 2, C, H, W]; got "
                f"{tuple(x.shape)}"
            )
        both = torch.cat([x[:, 0], x[:, 1]])  # one forward of 2B: view 1, then view 2
        return self._inputs(both, y.repeat(2))

    def train_step(
        self, x: Tensor, y: Tensor, epoch: int, step: int | None = None
    ) -> dict[str, Tensor]:
        """One fused step of every node on the two views ``x [B, 2, C, H, W]``."""
        x, _ = self._two_views(x, y)
        plan, weights, out, features = self._forward_step(x, epoch, step)
        views = as_views(out.float())
        blind = torch.zeros(views.shape[1], dtype=torch.long, device=views.device)
        losses, per_edge = edge_losses(plan, views, blind, weights, len(self.nodes), features)
        self._update(plan, losses)
        sim, partner = contrastive_guess(views)
        self.meter.add(plan.forward_index, sim, partner, losses)
        self.meter.add_edges(plan.edge_index, per_edge, weights, partner.shape[0])
        return {n.name: losses[n.index].detach() for n in self.trainable}

    def features(self, batches: Batches) -> tuple[dict[int, Tensor], Tensor]:
        """Every node's features ``[N, d]`` (float32) over ``batches`` and the labels ``[N]``
        (eval mode, no grad)."""
        nodes = self._evaluated()
        feats: dict[int, list[Tensor]] = {i: [] for i in nodes}
        labels = []
        self._set_mode("eval")
        with torch.no_grad():
            for x, y in batches:
                x, y = self._inputs(x, y)
                labels.append(y)
                with self.autocast():
                    for i in nodes:
                        node = self.nodes[i]
                        assert node.features is not None
                        out = self.forward_node(node, x, False, {"features": node.features})
                        feats[i].append(out.features["features"].flatten(1).float())
        self._set_mode("train")
        if not labels:
            raise KtgRuntimeError("kNN evaluation got no batches")
        return {i: torch.cat(f).to(self.device) for i, f in feats.items()}, torch.cat(labels)

    def evaluate_metrics(self, batches: Batches) -> dict[str, dict[str, float]]:
        """kNN top-1 (%) of every node's features: ``top1`` and ``knn_top1`` (and
        ``probe_top1`` with a linear probe). ``batches``: a :class:`KnnData`."""
        from .knn import knn_top1, linear_probe_top1

        if not isinstance(batches, KnnData):
            raise KtgRuntimeError(
                "kNN evaluation needs the memory bank: pass KnnData(bank=..., query=...)"
            )
        bank, bank_y = self.features(batches.bank)
        query, query_y = self.features(batches.query)
        if self.knn.k > bank_y.shape[0]:
            raise KtgRuntimeError(
                f"kNN with k = {self.knn.k} needs a memory bank of at least k samples; the "
                f"training part has {bank_y.shape[0]}: lower self_supervised.knn.k"
            )
        out: dict[str, dict[str, float]] = {}
        classes = self.program.num_classes
        for i, f in bank.items():
            top1 = knn_top1(
                f, bank_y, query[i], query_y, num_classes=classes, k=self.knn.k,
                weighted=self.knn.weighted, temperature=self.knn.temperature,
            )  # fmt: skip
            out[self.nodes[i].name] = {"top1": top1, "knn_top1": top1}
            if self.knn.linear_probe:
                probe = linear_probe_top1(f, bank_y, query[i], query_y, num_classes=classes)
                out[self.nodes[i].name]["probe_top1"] = probe
        return out
