"""The fused edge losses of one step.

Every sender is detached, so node i's parameters get gradient only from node i's loss, and the
whole graph trains with ONE backward of sum_i L_i. The losses are computed together from the
stacked logits ``Z [M, B, C]`` (float32):

* labels edges with cross-entropy: one ``cross_entropy`` over all receivers at once;
* KL edges of one temperature T: one ``log_softmax`` of ``Z / T`` for the receivers and one for
  the (detached) senders, then the per-sample KL of every edge of the group at once, gathered
  pair by pair (only edges that exist are computed, so a sender's NaN reaches only its own
  receivers);
* any other loss (``mse``, plugins): edge by edge, through its ``per_sample``.

Gate weights are known on the host before the step (they depend on time only). A plan is built
once per set of open edges: edges whose weight is 0 throughout are not computed, cut-off edges
never are. A plan holds its weights as a device table with one row per time index it serves
(one row when gates move per epoch; one per step of the epoch when they move per step), and
every index it needs as a device tensor, so that a step copies nothing from the host.

The ``correct`` gate multiplies an edge's per-sample loss by the sender's correct-prediction
mask; other edges use a row of ones. Each edge's loss is a mean over the batch.
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
    """Edges computed together, one entry per edge.

    ``receivers``/``senders``: rows of the stacked logits; ``targets``: the receivers' node
    indices (where the losses go); ``weight_cols``: the edges' columns in the weight table;
    ``masks``: rows of the correct-mask table, -1 where the gate is not per sample.
    For KL groups, ``r_rows``/``s_rows`` are the distinct receivers/senders and ``pair_r`` /
    ``pair_s`` index them per edge."""

    receivers: Tensor
    senders: Tensor
    targets: Tensor
    weight_cols: Tensor
    masks: Tensor | None
    temperature: float = 1.0
    label_smoothing: float = 0.0
    r_rows: Tensor | None = None
    s_rows: Tensor | None = None
    pair_r: Tensor | None = None
    pair_s: Tensor | None = None


@dataclass
class StepPlan:
    """What one step computes while a given set of edges is open."""

    forward: list[int]  # node indices to run, in order (trained nodes, then needed teachers)
    stepping: list[int]  # nodes with at least one open incoming edge: they take a step
    position: dict[int, int]  # node index -> row in the stacked logits
    forward_index: Tensor  # ``forward`` on the device
    weights: Tensor | None = None  # [time rows, open edges]
    labels: list[_Group] = field(default_factory=list)
    kl: list[_Group] = field(default_factory=list)
    generic: list[tuple[EdgeSlot, int, Tensor]] = field(default_factory=list)  # edge, column
    correct_rows: Tensor | None = None  # rows of Z whose correct-prediction mask is needed
    mask_of: dict[int, int] = field(default_factory=dict)  # row of Z -> row of the mask table


def build_plan(program: Program, weight_rows: list[list[float]], device: torch.device) -> StepPlan:
    """The plan for a table of edge weights: one row per time index the plan serves, one
    column per ``program.edges``. An edge is open if any row gives it a weight above 0."""
    nodes = list(program.nodes.values())
    columns = [i for i in range(len(program.edges)) if any(row[i] > 0.0 for row in weight_rows)]
    open_edges = [(program.edges[i], col) for col, i in enumerate(columns)]
    trained = [n.index for n in nodes if not n.frozen]
    teachers = sorted({e.sender for e, _ in open_edges if nodes[e.sender].frozen})
    forward = trained + teachers
    pos = {node: i for i, node in enumerate(forward)}

    def longs(values: list[int]) -> Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    correct_rows = sorted({pos[e.sender] for e, _ in open_edges if e.gate.per_sample})
    mask_of = {row: i for i, row in enumerate(correct_rows)}
    table = torch.tensor(
        [[row[i] for i in columns] for row in weight_rows], dtype=torch.float32, device=device
    )
    plan = StepPlan(
        forward,
        sorted({e.receiver for e, _ in open_edges}),
        pos,
        longs(forward),
        weights=table,
        correct_rows=longs(correct_rows) if correct_rows else None,
        mask_of=mask_of,
    )

    def masks(group: list[tuple[EdgeSlot, int]]) -> Tensor | None:
        rows = [mask_of[pos[e.sender]] if e.gate.per_sample else -1 for e, _ in group]
        return longs(rows) if any(r >= 0 for r in rows) else None

    labels: dict[float, list[tuple[EdgeSlot, int]]] = {}
    kl: dict[float, list[tuple[EdgeSlot, int]]] = {}
    for e, col in open_edges:
        if e.is_labels and type(e.loss) is CrossEntropy:
            labels.setdefault(e.loss.label_smoothing, []).append((e, col))
        elif not e.is_labels and type(e.loss) is KL:
            kl.setdefault(e.loss.temperature, []).append((e, col))
        else:
            plan.generic.append((e, col, longs([e.receiver])))

    for smoothing, group in sorted(labels.items()):
        rows = [pos[e.receiver] for e, _ in group]
        plan.labels.append(
            _Group(
                longs(rows),
                longs(rows),
                longs([e.receiver for e, _ in group]),
                longs([c for _, c in group]),
                masks(group),
                label_smoothing=smoothing,
            )
        )

    for temp, group in sorted(kl.items()):
        rs = sorted({pos[e.receiver] for e, _ in group})
        ss = sorted({pos[e.sender] for e, _ in group})
        plan.kl.append(
            _Group(
                longs([pos[e.receiver] for e, _ in group]),
                longs([pos[e.sender] for e, _ in group]),
                longs([e.receiver for e, _ in group]),
                longs([c for _, c in group]),
                masks(group),
                temperature=temp,
                r_rows=longs(rs),
                s_rows=longs(ss),
                pair_r=longs([rs.index(pos[e.receiver]) for e, _ in group]),
                pair_s=longs([ss.index(pos[e.sender]) for e, _ in group]),
            )
        )
    return plan


def stacked_cross_entropy(z: Tensor, y: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Per-sample cross-entropy ``[R, B]`` of stacked logits ``[R, B, C]`` with labels ``[B]``,
    in one call."""
    r = z.shape[0]
    return F.cross_entropy(
        z.flatten(0, 1), y.repeat(r), reduction="none", label_smoothing=label_smoothing
    ).view(r, -1)


def _masked(per_sample: Tensor, table: Tensor | None, rows: Tensor | None) -> Tensor:
    """Multiply each edge's per-sample loss [E, B] by its correct mask (ones where none)."""
    if rows is None or table is None:
        return per_sample
    padded = torch.cat([table, torch.ones_like(table[:1])])
    return per_sample * padded[torch.where(rows < 0, table.shape[0], rows)]


def edge_losses(plan: StepPlan, logits: Tensor, y: Tensor, n_nodes: int, row: int = 0) -> Tensor:
    """Per-node losses ``[n_nodes]`` (float32) from stacked logits ``[M, B, C]``, with the
    weights of time row ``row`` of the plan."""
    z = logits.float()
    losses = z.new_zeros(n_nodes)
    assert plan.weights is not None
    w = plan.weights[row]
    table = None
    if plan.correct_rows is not None:
        table = (z.index_select(0, plan.correct_rows).argmax(-1) == y).float()  # [K, B]

    for g in plan.labels:
        ce = stacked_cross_entropy(z.index_select(0, g.receivers), y, g.label_smoothing)
        ce = _masked(ce, table, g.masks)
        losses = losses.index_add(0, g.targets, ce.mean(-1) * w.index_select(0, g.weight_cols))

    for g in plan.kl:
        assert g.r_rows is not None and g.s_rows is not None
        assert g.pair_r is not None and g.pair_s is not None
        t = g.temperature
        logq = F.log_softmax(z.index_select(0, g.r_rows) / t, dim=-1)  # receivers: gradient
        logp = F.log_softmax(z.index_select(0, g.s_rows).detach() / t, dim=-1)  # senders
        p = logp.exp()
        neg_entropy = (p * logp).sum(-1)  # [S, B]
        cross = (p.index_select(0, g.pair_s) * logq.index_select(0, g.pair_r)).sum(-1)
        kl = (neg_entropy.index_select(0, g.pair_s) - cross) * (t * t)  # [E, B]
        kl = _masked(kl, table, g.masks)
        losses = losses.index_add(0, g.targets, kl.mean(-1) * w.index_select(0, g.weight_cols))

    for e, col, target in plan.generic:
        rp = plan.position[e.receiver]
        sp = plan.position[e.sender]
        per_sample = e.loss.per_sample(z[rp], y if e.is_labels else z[sp].detach())
        if e.gate.per_sample and table is not None:
            per_sample = per_sample * table[plan.mask_of[sp]]
        losses = losses.index_add(0, target, (per_sample.mean() * w[col]).reshape(1))
    return losses
