"""The fused edge losses of one step.

Every sender is detached, so node i's parameters get gradient only from node i's loss, and the
whole graph trains with ONE backward of sum_i L_i. The losses are computed together from the
stacked logits ``Z [M, B, C]`` (float32):

* edges whose losses offer a group kernel (``engine.contracts.GroupKernel``: ``ce`` and ``kl``
  among the built-ins) are computed per kind in one call: all labels edges of one
  cross-entropy setting at once; all KL edges of one temperature from one ``log_softmax`` of
  the distinct receivers and one of the distinct (detached) senders, gathered pair by pair
  (only edges that exist are computed, so a sender's NaN reaches only its own receivers);
* any other loss (``mse``, plugins): edge by edge, through its ``per_sample``.

A **plan** says what a step computes while a given set of edges is open (weight above 0):
which nodes forward, which take a step, the groups and every index as a device tensor. Plans
are cached by that set; the gate weights are data, a device table passed to the step, so a
linear gate moving every epoch reuses one plan. Cut-off edges never enter a plan.

A per-sample gate multiplies its edge's per-sample loss by ``gate.sample_mask(sender logits,
labels)``; masks are computed once per step for each distinct (gate, sender). Each edge's loss
is a mean over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .contracts import EdgeLoss, Gate, GroupKernel
from .program import EdgeSlot, Program


@dataclass(frozen=True)
class EdgeGroup:
    """Edges of one kind computed by one call of their loss's group kernel.

    ``r_rows``/``s_rows``: the distinct receiving/sending rows of the stacked logits (no
    senders on labels edges); ``pair_r``/``pair_s`` index them per edge; ``targets``: the
    receivers' node indices (where the losses go); ``cols``: the edges' columns in the weight
    table; ``masks``: per edge, a row of the step's mask table, or -1 (None: no masks)."""

    kernel: GroupKernel
    labels: bool
    r_rows: Tensor
    s_rows: Tensor | None
    pair_r: Tensor
    pair_s: Tensor | None
    targets: Tensor
    cols: Tensor
    masks: Tensor | None
    edges: tuple[tuple[int, int], ...]  # (receiver, sender) node indices, for display


@dataclass(frozen=True)
class SingleEdge:
    """An edge computed alone, through its loss's ``per_sample``."""

    edge: EdgeSlot
    col: int
    target: Tensor
    mask: int  # row of the step's mask table, or -1
    cols: Tensor  # ``[col]`` on the device (where its loss goes in the per-edge losses)


@dataclass(frozen=True)
class StepPlan:
    """What one step computes while the edges ``open`` (indices into ``program.edges``) are
    open; weight column i belongs to ``open[i]``."""

    open: tuple[int, ...]
    forward: list[int]  # node indices to run, in order (trained nodes, then needed teachers)
    taps: dict[int, dict[str, str]]  # node index -> the taps open edges read (name -> path)
    stepping: list[int]  # nodes with at least one open incoming edge: they take a step
    position: dict[int, int]  # node index -> row in the stacked logits
    forward_index: Tensor  # ``forward`` on the device
    edge_index: Tensor  # ``open`` on the device (where each column's edge terms are summed)
    groups: list[EdgeGroup] = field(default_factory=list)
    singles: list[SingleEdge] = field(default_factory=list)
    mask_sources: list[tuple[Gate, int]] = field(default_factory=list)  # (gate, logits row)


def open_set(weight_rows: list[list[float]]) -> tuple[int, ...]:
    """The edges some row of a weight table opens (weight above 0)."""
    if not weight_rows:
        return ()
    return tuple(i for i in range(len(weight_rows[0])) if any(r[i] > 0.0 for r in weight_rows))


def build_plan(program: Program, open_edges: tuple[int, ...], device: torch.device) -> StepPlan:
    """The plan for a set of open edges (indices into ``program.edges``)."""
    nodes = list(program.nodes.values())
    edges = [(program.edges[i], col) for col, i in enumerate(open_edges)]
    trained = [n.index for n in nodes if not n.frozen]
    teachers = sorted({e.sender for e, _ in edges if nodes[e.sender].frozen})
    forward = trained + teachers
    pos = {node: row for row, node in enumerate(forward)}
    taps: dict[int, dict[str, str]] = {}
    for e, _ in edges:
        for node, tap in ((e.receiver, e.receiver_tap), (e.sender, e.sender_tap)):
            if tap is not None:
                taps.setdefault(node, {})[tap] = nodes[node].taps[tap]
    sources: list[tuple[Gate, int]] = []
    for e, _ in edges:
        if e.gate.per_sample and (e.gate, pos[e.sender]) not in sources:
            sources.append((e.gate, pos[e.sender]))

    def mask_row(e: EdgeSlot) -> int:
        return sources.index((e.gate, pos[e.sender])) if e.gate.per_sample else -1

    kinds: dict[tuple[bool, Hashable], list[tuple[EdgeSlot, int]]] = {}
    singles = []
    for e, col in edges:
        if isinstance(e.loss, GroupKernel) and not e.on_features and e.adapter is None:
            kinds.setdefault((e.is_labels, e.loss.group_key()), []).append((e, col))
        else:
            singles.append(
                SingleEdge(e, col, _longs([e.receiver], device), mask_row(e), _longs([col], device))
            )
    groups = [
        _group(group, pos, mask_row, device)
        for _, group in sorted(kinds.items(), key=lambda kv: (not kv[0][0], repr(kv[0][1])))
    ]
    return StepPlan(
        open_edges,
        forward,
        taps,
        sorted({e.receiver for e, _ in edges}),
        pos,
        _longs(forward, device),
        _longs(list(open_edges), device),
        groups,
        singles,
        sources,
    )


def _longs(values: list[int], device: torch.device) -> Tensor:
    return torch.tensor(values, dtype=torch.long, device=device)


def _group(
    group: list[tuple[EdgeSlot, int]],
    pos: dict[int, int],
    mask_row: Callable[[EdgeSlot], int],
    device: torch.device,
) -> EdgeGroup:
    first = group[0][0]
    labels = first.is_labels
    rs = sorted({pos[e.receiver] for e, _ in group})
    ss = sorted({pos[e.sender] for e, _ in group})
    masks = [mask_row(e) for e, _ in group]
    assert isinstance(first.loss, GroupKernel)
    return EdgeGroup(
        first.loss,
        labels,
        _longs(rs, device),
        None if labels else _longs(ss, device),
        _longs([rs.index(pos[e.receiver]) for e, _ in group], device),
        None if labels else _longs([ss.index(pos[e.sender]) for e, _ in group], device),
        _longs([e.receiver for e, _ in group], device),
        _longs([c for _, c in group], device),
        _longs(masks, device) if any(m >= 0 for m in masks) else None,
        tuple((e.receiver, e.sender) for e, _ in group),
    )


def stacked_cross_entropy(z: Tensor, y: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Per-sample cross-entropy ``[R, B]`` of stacked logits ``[R, B, C]`` with labels ``[B]``,
    in one call (the labels edges' kernel, and evaluation's loss)."""
    r = z.shape[0]
    return F.cross_entropy(
        z.flatten(0, 1), y.repeat(r), reduction="none", label_smoothing=label_smoothing
    ).view(r, -1)


def _masked(per_sample: Tensor, table: Tensor | None, rows: Tensor | None) -> Tensor:
    """Multiply each edge's per-sample loss [E, B] by its mask (ones where it has none)."""
    if rows is None or table is None:
        return per_sample
    padded = torch.cat([table, torch.ones_like(table[:1])])
    return per_sample * padded[torch.where(rows < 0, table.shape[0], rows)]


def mask_table(plan: StepPlan, z: Tensor, y: Tensor) -> Tensor | None:
    """Each mask source's per-sample weights ``[K, B]`` (float32), from detached logits."""
    if not plan.mask_sources:
        return None
    rows = []
    for gate, row in plan.mask_sources:
        mask = gate.sample_mask(z[row].detach(), y)
        rows.append(torch.ones_like(y, dtype=torch.float32) if mask is None else mask.float())
    return torch.stack(rows)


Features = dict[tuple[int, str], Tensor]  # (node index, tap) -> the tap's output


def edge_losses(
    plan: StepPlan,
    logits: Tensor,
    y: Tensor,
    weights: Tensor,
    n_nodes: int,
    features: Features | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-node losses ``[n_nodes]`` (float32) from stacked logits ``[M, B, C]`` (and the
    taps' outputs, for feature edges), with one weight per open edge (``weights[i]`` for
    ``plan.open[i]``); and each open edge's own loss ``[len(plan.open)]`` before its weight
    (detached: what the metrics record per edge, kept on the device)."""
    z = logits.float()
    losses = z.new_zeros(n_nodes)
    per_edge = z.new_zeros(len(plan.open))
    table = mask_table(plan, z, y)
    for g in plan.groups:
        receivers = z.index_select(0, g.r_rows)
        senders = None if g.s_rows is None else z.index_select(0, g.s_rows).detach()
        per_sample = g.kernel.group_per_sample(receivers, senders, y, g.pair_r, g.pair_s)
        mean = _masked(per_sample, table, g.masks).mean(-1)
        per_edge = per_edge.index_copy(0, g.cols, mean.detach())
        losses = losses.index_add(0, g.targets, mean * weights.index_select(0, g.cols))
    for s in plan.singles:
        per_sample = single_loss(s.edge, plan, z, y, features or {})
        if s.mask >= 0 and table is not None:
            per_sample = per_sample * table[s.mask]
        mean = per_sample.mean().reshape(1)
        per_edge = per_edge.index_copy(0, s.cols, mean.detach())
        losses = losses.index_add(0, s.target, mean * weights[s.col])
    return losses, per_edge


def single_loss(e: EdgeSlot, plan: StepPlan, z: Tensor, y: Tensor, features: Features) -> Tensor:
    """One edge's per-sample loss ``[B]``: its receiver's output (through the edge's adapter,
    if it has one) against the labels or the sender's detached output; logits or taps."""
    if e.receiver_tap is None:
        receiver = z[plan.position[e.receiver]]
    else:
        receiver = features[(e.receiver, e.receiver_tap)].float()
    if e.is_labels:  # a views loss's self edge: the receiver's own views, not labels
        target = receiver.detach() if e.views else y
    elif e.sender_tap is None:
        target = z[plan.position[e.sender]].detach()
    else:
        target = features[(e.sender, e.sender_tap)].detach().float()
    if e.adapter is not None:
        receiver = e.adapter(receiver).float()
    if e.loss.needs_labels:
        return e.loss.per_sample(receiver, target, y)  # type: ignore[call-arg]
    return e.loss.per_sample(receiver, target)


def describe_group(g: EdgeGroup | SingleEdge) -> tuple[str, tuple[tuple[int, int], ...]]:
    """(loss kind, its edges as (receiver, sender) pairs): a plan in plain values."""
    if isinstance(g, SingleEdge):
        loss: EdgeLoss = g.edge.loss
        return _describe(loss), ((g.edge.receiver, g.edge.sender),)
    return _describe(g.kernel), g.edges


def _describe(loss: object) -> str:
    describe = getattr(loss, "describe", None)
    return (str(describe()) if callable(describe) else "") or type(loss).__name__


@dataclass(frozen=True)
class PlanCacheInfo:
    """How the plan cache has served the steps (as ``functools.lru_cache``'s cache_info)."""

    hits: int
    misses: int
    size: int
    maxsize: int


@dataclass(frozen=True)
class StepSummary:
    """What a step computes at a given time, in plain values: the nodes that forward and that
    take a step, the edge groups (loss kind, (receiver, sender) names), the weight of each open
    edge and the taps read."""

    forward: list[str]
    stepping: list[str]
    groups: list[tuple[str, list[tuple[str, str]]]]
    weights: dict[tuple[str, str], float]  # (receiver end, sender end): a.f3, t.f3 for taps
    taps: dict[str, list[str]]  # node -> the taps read (hooked) in this step


def end_name(node: str, tap: str | None) -> str:
    return node if tap is None else f"{node}.{tap}"


def summarize(program: Program, plan: StepPlan, weights: list[float]) -> StepSummary:
    """A plan in plain values (``Engine.step_summary``), with its open edges' weights."""
    names = program.names

    def pairs(edges: tuple[tuple[int, int], ...]) -> list[tuple[str, str]]:
        return [(names[r], "labels" if r == s else names[s]) for r, s in edges]

    parts: list[EdgeGroup | SingleEdge] = [*plan.groups, *plan.singles]
    by_edge = {}
    for i, w in zip(plan.open, weights, strict=True):
        e = program.edges[i]
        sender = "labels" if e.is_labels else names[e.sender]
        by_edge[(end_name(names[e.receiver], e.receiver_tap), end_name(sender, e.sender_tap))] = w
    return StepSummary(
        [names[i] for i in plan.forward],
        [names[i] for i in plan.stepping],
        [(kind, pairs(edges)) for kind, edges in map(describe_group, parts)],
        by_edge,
        {names[i]: sorted(taps) for i, taps in plan.taps.items()},
    )
