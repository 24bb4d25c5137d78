"""Where arrows enter a node. Graphviz's ``dot`` aims every edge at its node's centre, so two
arrows arriving from one side can meet in one point. After a first layout, where two or three
arrows from above (or below) a node end that close, each gets its own point of that side: the
left corner, the middle or the right corner, whichever is nearest the direction it comes
from, in the order they come in, so that no edge has to bend back to reach it."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from ..graph import GraphEdge

SIDES = {1: ("nw", "n", "ne"), -1: ("sw", "s", "se")}  # from above, from below
CLOSE = 0.2  # inches: heads nearer than this are crowded


@dataclass(frozen=True)
class Head:
    """Where an edge of the first layout ends, and its direction there (towards its tail)."""

    x: float
    y: float
    dx: float
    dy: float


def arrivals(plain: str) -> tuple[dict[str, float], dict[str, Head]]:
    """From Graphviz's ``plain`` output: each node's height (y), and each edge's head
    (``edge TAIL HEAD N x1 y1 ... xN yN ...``: its last two control points)."""
    nodes: dict[str, float] = {}
    heads: dict[str, Head] = {}
    for line in plain.splitlines():
        parts = line.split()
        if parts[:1] == ["node"] and len(parts) > 3:
            nodes[parts[1].strip('"')] = float(parts[3])
        elif parts[:1] == ["edge"] and len(parts) > 4:
            n = int(parts[3])
            x0, y0, x1, y1 = (float(v) for v in parts[2 * n : 2 * n + 4])
            heads[f"{parts[1]}->{parts[2]}"] = Head(x1, y1, x0 - x1, y0 - y1)
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


def head_ports(plain: str, edges: list[GraphEdge]) -> dict[str, str]:
    """Edge key -> the compass point its head enters the receiver at, for the two or three
    crowded arrows that come from one side of a node (with more, they keep the centre)."""
    heights, heads = arrivals(plain)
    ports: dict[str, str] = {}
    for name, y in heights.items():
        into = [e for e in edges if e.receiver == name and e.key in heads and e.sender in heights]
        for side, names in SIDES.items():
            group = [e for e in into if (heights[e.sender] - y) * side > 0]
            if not 2 <= len(group) <= 3 or not _crowded([heads[e.key] for e in group]):
                continue
            lean = {e.key: heads[e.key].dx / max(abs(heads[e.key].dy), 1e-6) for e in group}
            group.sort(key=lambda e: (lean[e.key], e.key))
            for e, point in zip(group, _fit([lean[e.key] for e in group]), strict=True):
                ports[e.key] = names[point]
    return ports
