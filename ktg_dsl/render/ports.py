"""Where edges meet their nodes.

A feature edge runs from its sender's tap to its receiver's tap: ports of the nodes' tables
(see ``nodes``); a logits edge of a node with taps starts or ends at the node's title cell,
its logits. Which side of the port: the bottom of the upper end and the top of the lower end,
as the rows of the layout say (both bottoms between nodes of one row), so that an edge never
crosses its own node.

Graphviz's ``dot`` aims every other edge at its node's centre, so two arrows arriving from one
side can meet in one point. After a first layout, where two or three arrows from above (or
below) one end (a node, a title cell or a tap) meet that close, each gets its own point of
that side: the left corner, the middle or the right corner, whichever is nearest the
direction it comes from, in the order they come in, so that no edge has to bend back to reach
it."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from ..graph import GraphEdge
from .nodes import LOGITS_PORT

SIDES = {1: ("nw", "n", "ne"), -1: ("sw", "s", "se")}  # from above, from below
CLOSE = 0.2  # inches: heads nearer than this are crowded


@dataclass(frozen=True)
class Head:
    """Where an edge of the first layout ends, and its direction there (towards its tail)."""

    x: float
    y: float
    dx: float
    dy: float


def arrivals(plain: str) -> tuple[dict[str, float], dict[tuple[str, str], list[Head]]]:
    """From Graphviz's ``plain`` output: each node's height (y), and the heads of the edges
    from each tail to each head node (``edge TAIL HEAD N x1 y1 ... xN yN ...``: the last two
    control points), in the order the edges were made: Graphviz writes a node's edges in that
    order, so a logits edge and a feature edge between one pair of nodes stay apart."""
    nodes: dict[str, float] = {}
    heads: dict[tuple[str, str], list[Head]] = {}
    for line in plain.splitlines():
        parts = line.split()
        if parts[:1] == ["node"] and len(parts) > 3:
            nodes[parts[1].strip('"')] = float(parts[3])
        elif parts[:1] == ["edge"] and len(parts) > 4:
            n = int(parts[3])
            x0, y0, x1, y1 = (float(v) for v in parts[2 * n : 2 * n + 4])
            pair = (parts[1].strip('"'), parts[2].strip('"'))
            heads.setdefault(pair, []).append(Head(x1, y1, x0 - x1, y0 - y1))
    return nodes, heads


def _fit(leans: list[float]) -> tuple[int, ...]:
    """Distinct side points (0 left, 1 middle, 2 right) in order, nearest each arrow's lean
    (-1: it comes from the left .. 1: from the right)."""
    targets = [1 + max(-1.0, min(1.0, lean)) for lean in leans]
    return min(
        itertools.combinations(range(3), len(leans)),
        key=lambda points: sum(abs(p - t) for p, t in zip(points, targets, strict=True)),
    )


def _crowded(heads: list[Head]) -> bool:
    return any(
        math.dist((a.x, a.y), (b.x, b.y)) < CLOSE for a, b in itertools.combinations(heads, 2)
    )


def _heads_by_key(
    heads: dict[tuple[str, str], list[Head]], edges: list[GraphEdge]
) -> dict[str, Head]:
    """Each edge's head: the n-th edge from one node to another is the n-th of the layout."""
    seen: dict[tuple[str, str], int] = {}
    out: dict[str, Head] = {}
    for e in edges:
        pair = (e.sender, e.receiver)
        i = seen[pair] = seen.get(pair, -1) + 1
        if i < len(heads.get(pair, [])):
            out[e.key] = heads[pair][i]
    return out


def head_ports(plain: str, edges: list[GraphEdge]) -> dict[str, str]:
    """Edge key -> the compass point its head enters its end at, for the two or three
    crowded arrows that come from one side of one end (with more, they keep the default).
    ``edges``: every edge of the layout, in the order they were made."""
    heights, pairs = arrivals(plain)
    heads = _heads_by_key(pairs, edges)
    ends: dict[str, list[GraphEdge]] = {}
    for e in edges:
        if e.key in heads and e.sender in heights and e.receiver in heights:
            ends.setdefault(e.receiver_end, []).append(e)
    ports: dict[str, str] = {}
    for into in ends.values():
        y = heights[into[0].receiver]
        for side, names in SIDES.items():
            group = [e for e in into if (heights[e.sender] - y) * side > 0]
            if not 2 <= len(group) <= 3 or not _crowded([heads[e.key] for e in group]):
                continue
            lean = {e.key: heads[e.key].dx / max(abs(heads[e.key].dy), 1e-6) for e in group}
            group.sort(key=lambda e: (lean[e.key], e.key))
            for e, point in zip(group, _fit([lean[e.key] for e in group]), strict=True):
                ports[e.key] = names[point]
    return ports


def end_ports(
    e: GraphEdge, depth: dict[str, int], tapped: set[str], crowded: dict[str, str]
) -> dict[str, str]:
    """``tailport`` and ``headport`` of an edge: a tap's port, or a tapped node's title cell,
    with the side it leaves or enters by (the head's side as ``head_ports`` found it when
    crowded); a node without taps only gets a head's side, and only when crowded."""
    if depth[e.sender] < depth[e.receiver]:
        tail_side, head_side = "s", "n"  # downwards
    elif depth[e.sender] > depth[e.receiver]:
        tail_side, head_side = "n", "s"  # upwards
    else:
        tail_side, head_side = "s", "s"  # within a row: below it, clear of the rows above
    head_side = crowded.get(e.key, head_side)
    tail = e.sender_tap or (LOGITS_PORT if e.sender in tapped else None)
    head = e.receiver_tap or (LOGITS_PORT if e.receiver in tapped else None)
    attrs = {}
    if tail is not None:
        attrs["tailport"] = f"{tail}:{tail_side}"
    if head is not None:
        attrs["headport"] = f"{head}:{head_side}"
    elif e.key in crowded:
        attrs["headport"] = crowded[e.key]
    return attrs
