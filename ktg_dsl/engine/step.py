"""The fused edge losses of one step.

Every sender is detached, so node i's parameters get gradient only from node i's loss, and the
whole graph trains with ONE backward of sum_i L_i. The losses are computed together from the
stacked logits ``Z [M, B, C]`` (float32):

* labels edges with cross-entropy: one ``cross_entropy`` over all receivers at once;
* KL edges of one temperature T: one ``log_softmax`` of ``Z / T`` and one einsum that gives the
  per-sample KL of every (receiver, sender) pair; a weight matrix picks the pairs that exist;
* any other loss (``mse``, plugins): edge by edge, through its ``per_sample``.

Gate weights are known on the host before the step (they depend on time only), so a plan is
built per distinct set of open edges: edges whose weight is 0 now are not computed, cut-off edges
never are. The ``correct`` gate multiplies an edge's per-sample loss by the sender's
correct-prediction mask. Each edge's loss is a mean over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..compiler import EdgeSlot, Program
from ..components.losses import KL, CrossEntropy


@dataclass
class _Group:
    """Edges computed together. ``receivers``/``senders`` index the stacked logits."""

    receivers: list[int]
    senders: list[int]
    weights: Tensor  # [R, S] (KL) or [R] (labels); 0 where no edge
    correct: Tensor | None  # same shape, 1 where the edge has the correct gate
    temperature: float = 1.0
    label_smoothing: float = 0.0


@dataclass
class StepPlan:
    """What one step computes at a given time."""

    forward: list[int]  # node indices to run, in order (trained nodes, then needed teachers)
    stepping: list[int]  # nodes with at least one open incoming edge: they take a step
    position: dict[int, int]  # node index -> row in the stacked logits
    labels: list[_Group] = field(default_factory=list)
    kl: list[_Group] = field(default_factory=list)
    generic: list[tuple[EdgeSlot, float]] = field(default_factory=list)
    correct_senders: list[int] = field(default_factory=list)  # positions needing a mask


def build_plan(program: Program, weights: list[float], device: torch.device) -> StepPlan:
    """The plan for edge weights ``weights`` (one per ``program.edges``)."""
    nodes = list(program.nodes.values())
    open_edges = [(e, w) for e, w in zip(program.edges, weights, strict=True) if w > 0.0]
    trained = [n.index for n in nodes if not n.frozen]
    teachers = sorted({e.sender for e, _ in open_edges if nodes[e.sender].frozen})
    forward = trained + teachers
    pos = {node: i for i, node in enumerate(forward)}
    plan = StepPlan(forward, sorted({e.receiver for e, _ in open_edges}), pos)

    def tensor(values: list[float] | list[list[float]]) -> Tensor:
        return torch.tensor(values, dtype=torch.float32, device=device)

    labels: dict[float, list[tuple[EdgeSlot, float]]] = {}
    kl: dict[float, list[tuple[EdgeSlot, float]]] = {}
    for e, w in open_edges:
        if e.is_labels and type(e.loss) is CrossEntropy:
            labels.setdefault(e.loss.label_smoothing, []).append((e, w))
        elif not e.is_labels and type(e.loss) is KL:
            kl.setdefault(e.loss.temperature, []).append((e, w))
        else:
            plan.generic.append((e, w))
    correct: set[int] = set()
    for smoothing, group in sorted(labels.items()):
        rs = [pos[e.receiver] for e, _ in group]
        flags = [1.0 if e.gate.per_sample else 0.0 for e, _ in group]
        correct |= {pos[e.sender] for e, _ in group if e.gate.per_sample}
        plan.labels.append(
            _Group(
                rs,
                rs,
                tensor([w for _, w in group]),
                tensor(flags) if any(flags) else None,
                label_smoothing=smoothing,
            )
        )
    for temp, group in sorted(kl.items()):
        rs = sorted({pos[e.receiver] for e, _ in group})
        ss = sorted({pos[e.sender] for e, _ in group})
        wm = [[0.0] * len(ss) for _ in rs]
        cm = [[0.0] * len(ss) for _ in rs]
        for e, weight in group:
            r, s = rs.index(pos[e.receiver]), ss.index(pos[e.sender])
            wm[r][s] = weight
            if e.gate.per_sample:
                cm[r][s] = 1.0
                correct.add(pos[e.sender])
        has_correct = any(any(row) for row in cm)
        plan.kl.append(
            _Group(rs, ss, tensor(wm), tensor(cm) if has_correct else None, temperature=temp)
        )
    correct |= {pos[e.sender] for e, _ in plan.generic if e.gate.per_sample}
    plan.correct_senders = sorted(correct)
    return plan


def edge_losses(plan: StepPlan, logits: Tensor, y: Tensor, n_nodes: int) -> Tensor:
    """Per-node losses ``[n_nodes]`` (float32) from stacked logits ``[M, B, C]``."""
    z = logits.float()
    losses = z.new_zeros(n_nodes)
    masks: dict[int, Tensor] = {}
    if plan.correct_senders:
        hits = (z[plan.correct_senders].argmax(-1) == y).float()  # [K, B]
        masks = {p: hits[i] for i, p in enumerate(plan.correct_senders)}
    node_of = {p: node for node, p in plan.position.items()}

    for g in plan.labels:
        r = g.receivers
        ce = F.cross_entropy(
            z[r].flatten(0, 1),
            y.repeat(len(r)),
            reduction="none",
            label_smoothing=g.label_smoothing,
        ).view(len(r), -1)  # [R, B]
        if g.correct is not None:
            mask = torch.stack([masks[p] if p in masks else torch.ones_like(ce[0]) for p in r])
            ce = torch.where(g.correct[:, None] > 0, ce * mask, ce)
        per_node = ce.mean(-1) * g.weights
        losses = losses.index_add(0, _index([node_of[p] for p in r], z.device), per_node)

    for g in plan.kl:
        t = g.temperature
        union = sorted(set(g.receivers) | set(g.senders))
        logp = F.log_softmax(z[union] / t, dim=-1)
        at = {p: i for i, p in enumerate(union)}
        logq = logp[[at[p] for p in g.receivers]]  # receivers, with gradient
        logp_s = logp[[at[p] for p in g.senders]].detach()  # senders, detached
        p_s = logp_s.exp()
        neg_entropy = (p_s * logp_s).sum(-1)  # [S, B]
        cross = torch.einsum("sbc,rbc->rsb", p_s, logq)  # [R, S, B]
        kl = (neg_entropy[None] - cross) * (t * t)  # per-sample KL(p_s || q_r) * T^2
        per_pair = kl.mean(-1)  # [R, S]
        if g.correct is not None:
            mask = torch.stack(
                [masks.get(p, torch.ones_like(neg_entropy[0])) for p in g.senders]
            )  # [S, B]
            masked = (kl * mask[None]).mean(-1)
            per_pair = torch.where(g.correct > 0, masked, per_pair)
        per_node = (per_pair * g.weights).sum(-1)
        losses = losses.index_add(0, _index([node_of[p] for p in g.receivers], z.device), per_node)

    for e, w in plan.generic:
        rp = plan.position[e.receiver]
        target = y if e.is_labels else z[plan.position[e.sender]].detach()
        per_sample = e.loss.per_sample(z[rp], target)
        if e.gate.per_sample:
            per_sample = per_sample * masks[plan.position[e.sender]]
        losses = losses.index_add(
            0, _index([e.receiver], z.device), (per_sample.mean() * w).reshape(1)
        )
    return losses


_INDEX_CACHE: dict[tuple[tuple[int, ...], torch.device], Tensor] = {}


def _index(values: list[int], device: torch.device) -> Tensor:
    key = (tuple(values), device)
    found = _INDEX_CACHE.get(key)
    if found is None:
        found = torch.tensor(values, dtype=torch.long, device=device)
        _INDEX_CACHE[key] = found
    return found
