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
never are. Every index the step needs is a device tensor made once with the plan, so a step
copies nothing from the host. The ``correct`` gate multiplies an edge's per-sample loss by the
sender's correct-prediction mask. Each edge's loss is a mean over the batch.
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
    """Edges computed together. ``receivers``/``senders`` are rows of the stacked logits;
    ``targets`` are the receivers' node indices (where their losses go)."""

    receivers: Tensor
    senders: Tensor
    targets: Tensor
    weights: Tensor  # [R, S] (KL) or [R] (labels); 0 where no edge
    correct: Tensor | None  # same shape, 1 where the edge has the correct gate
    sender_masks: Tensor | None = None  # [S] rows of the correct-mask table, -1 for none
    temperature: float = 1.0
    label_smoothing: float = 0.0


@dataclass
class StepPlan:
    """What one step computes at a given time."""

    forward: list[int]  # node indices to run, in order (trained nodes, then needed teachers)
    stepping: list[int]  # nodes with at least one open incoming edge: they take a step
    position: dict[int, int]  # node index -> row in the stacked logits
    forward_index: Tensor  # ``forward`` on the device
    labels: list[_Group] = field(default_factory=list)
    kl: list[_Group] = field(default_factory=list)
    generic: list[tuple[EdgeSlot, float, Tensor]] = field(default_factory=list)
    correct_rows: Tensor | None = None  # rows of Z whose correct-prediction mask is needed
    mask_of: dict[int, int] = field(default_factory=dict)  # row of Z -> row of the mask table


def build_plan(program: Program, weights: list[float], device: torch.device) -> StepPlan:
    """The plan for edge weights ``weights`` (one per ``program.edges``)."""
    nodes = list(program.nodes.values())
    open_edges = [(e, w) for e, w in zip(program.edges, weights, strict=True) if w > 0.0]
    trained = [n.index for n in nodes if not n.frozen]
    teachers = sorted({e.sender for e, _ in open_edges if nodes[e.sender].frozen})
    forward = trained + teachers
    pos = {node: i for i, node in enumerate(forward)}

    def floats(values: list[float] | list[list[float]]) -> Tensor:
        return torch.tensor(values, dtype=torch.float32, device=device)

    def longs(values: list[int]) -> Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    # correct-prediction masks are computed once per step for every sender that needs one
    correct_rows = sorted({pos[e.sender] for e, _ in open_edges if e.gate.per_sample})
    mask_of = {row: i for i, row in enumerate(correct_rows)}
    plan = StepPlan(
        forward,
        sorted({e.receiver for e, _ in open_edges}),
        pos,
        longs(forward),
        correct_rows=longs(correct_rows) if correct_rows else None,
        mask_of=mask_of,
    )

    labels: dict[float, list[tuple[EdgeSlot, float]]] = {}
    kl: dict[float, list[tuple[EdgeSlot, float]]] = {}
    for e, w in open_edges:
        if e.is_labels and type(e.loss) is CrossEntropy:
            labels.setdefault(e.loss.label_smoothing, []).append((e, w))
        elif not e.is_labels and type(e.loss) is KL:
            kl.setdefault(e.loss.temperature, []).append((e, w))
        else:
            plan.generic.append((e, w, longs([e.receiver])))

    for smoothing, group in sorted(labels.items()):
        rows = [pos[e.receiver] for e, _ in group]
        flags = [1.0 if e.gate.per_sample else 0.0 for e, _ in group]
        plan.labels.append(
            _Group(
                longs(rows),
                longs(rows),
                longs([e.receiver for e, _ in group]),
                floats([w for _, w in group]),
                floats(flags) if any(flags) else None,
                sender_masks=longs([mask_of.get(r, -1) for r in rows]) if any(flags) else None,
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
        has_correct = any(any(row) for row in cm)
        plan.kl.append(
            _Group(
                longs(rs),
                longs(ss),
                longs([forward[r] for r in rs]),
                floats(wm),
                floats(cm) if has_correct else None,
                sender_masks=longs([mask_of.get(s, -1) for s in ss]) if has_correct else None,
                temperature=temp,
            )
        )
    return plan


def _masks_for(table: Tensor, rows: Tensor) -> Tensor:
    """Rows of the correct-mask table; index -1 (no mask needed) gives ones."""
    padded = torch.cat([table, torch.ones_like(table[:1])])
    return padded[torch.where(rows < 0, table.shape[0], rows)]


def edge_losses(plan: StepPlan, logits: Tensor, y: Tensor, n_nodes: int) -> Tensor:
    """Per-node losses ``[n_nodes]`` (float32) from stacked logits ``[M, B, C]``."""
    z = logits.float()
    losses = z.new_zeros(n_nodes)
    table = None
    if plan.correct_rows is not None:
        table = (z.index_select(0, plan.correct_rows).argmax(-1) == y).float()  # [K, B]

    for g in plan.labels:
        zr = z.index_select(0, g.receivers)
        r = zr.shape[0]
        ce = F.cross_entropy(
            zr.flatten(0, 1), y.repeat(r), reduction="none", label_smoothing=g.label_smoothing
        ).view(r, -1)  # [R, B]
        if g.correct is not None and table is not None and g.sender_masks is not None:
            ce = ce * _masks_for(table, g.sender_masks)
        losses = losses.index_add(0, g.targets, ce.mean(-1) * g.weights)

    for g in plan.kl:
        t = g.temperature
        logq = F.log_softmax(z.index_select(0, g.receivers) / t, dim=-1)  # with gradient
        logp = F.log_softmax(z.index_select(0, g.senders).detach() / t, dim=-1)
        p = logp.exp()
        neg_entropy = (p * logp).sum(-1)  # [S, B]
        cross = torch.einsum("sbc,rbc->rsb", p, logq)  # [R, S, B]
        kl = (neg_entropy[None] - cross) * (t * t)  # per-sample KL(p_s || q_r) * T^2
        per_pair = kl.mean(-1)  # [R, S]
        if g.correct is not None and table is not None and g.sender_masks is not None:
            masked = (kl * _masks_for(table, g.sender_masks)[None]).mean(-1)
            per_pair = torch.where(g.correct > 0, masked, per_pair)
        losses = losses.index_add(0, g.targets, (per_pair * g.weights).sum(-1))

    for e, w, target in plan.generic:
        rp = plan.position[e.receiver]
        sp = plan.position[e.sender]
        per_sample = e.loss.per_sample(z[rp], y if e.is_labels else z[sp].detach())
        if e.gate.per_sample and table is not None:
            per_sample = per_sample * table[plan.mask_of[sp]]
        losses = losses.index_add(0, target, (per_sample.mean() * w).reshape(1))
    return losses
