"""Where a graph's nodes run: a mesh of R = G x D ranks. The trained nodes are placed on G graph
groups; each node is data-parallel over the D ranks (replicas) of its group. Rank r is replica
``r % D`` of group ``r // D``. The ranks that hold the same data shard (one per group) form a
*graph group*: they exchange the logits (and taps) that cross groups. The ranks of one group
form its *replica group*: its nodes' gradients are averaged there (DistributedDataParallel).

A ``Coordinator`` is what the recipe asks of the processes around it (who writes run files,
agreeing to stop, waiting for each other); ``Solo`` is the single-process one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Mesh:
    rank: int
    world: int
    groups: int  # G
    replicas: int  # D
    placement: dict[int, int] = field(default_factory=dict)  # trained node index -> group
    # frozen teacher index -> the one group that runs it and sends its logits to the others;
    # a teacher not listed runs on every group whose nodes read it
    homes: dict[int, int] = field(default_factory=dict)

    @property
    def group(self) -> int:
        return self.rank // self.replicas

    @property
    def replica(self) -> int:
        return self.rank % self.replicas

    def local(self, node: int) -> bool:
        """Whether this rank trains ``node``."""
        return self.placement.get(node) == self.group

    def runs_teacher(self, teacher: int) -> bool:
        """Whether this rank's group runs ``teacher`` when its nodes read it (its home, or
        any reading group of a replicated teacher)."""
        return self.homes.get(teacher, self.group) == self.group

    def owner(self, node: int) -> int:
        """The rank that writes ``node``'s files: replica 0 of its group."""
        return self.placement[node] * self.replicas

    def graph_ranks(self, replica: int) -> list[int]:
        return [g * self.replicas + replica for g in range(self.groups)]

    def replica_ranks(self, group: int) -> list[int]:
        return [group * self.replicas + d for d in range(self.replicas)]

    def nodes_of(self, group: int) -> list[int]:
        return sorted(n for n, g in self.placement.items() if g == group)


class Coordinator(Protocol):
    rank: int
    world: int

    def is_writer(self) -> bool:
        """Whether this process writes the run's shared files (metrics, the manifest)."""
        ...

    def owns(self, node: int) -> bool:
        """Whether this process writes ``node``'s files (its state, its best checkpoint)."""
        ...

    def agree(self, flag: bool) -> bool:
        """True on every process when ``flag`` is true on any (a stop request, a broken loss)."""
        ...

    def barrier(self) -> None: ...

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order."""
        ...


class Solo:
    """The coordinator of a single process: it writes everything and waits for nobody."""

    rank, world = 0, 1

    def is_writer(self) -> bool:
        return True

    def owns(self, node: int) -> bool:
        return True

    def agree(self, flag: bool) -> bool:
        return flag

    def barrier(self) -> None:
        return None

    def gather(self, obj: Any) -> list[Any]:
        return [obj]


def balance(costs: dict[int, float], groups: int) -> dict[int, int]:
    """Place nodes on ``groups`` groups balancing their summed cost (forward FLOPs): the
    longest-processing-time rule, deterministic (ties by node index, then group index)."""
    load = [0.0] * groups
    placement: dict[int, int] = {}
    for node in sorted(costs, key=lambda n: (-costs[n], n)):
        g = min(range(groups), key=lambda i: (load[i], i))
        placement[node] = g
        load[g] += costs[node]
    return placement


def loads(placement: dict[int, int], costs: dict[int, float], groups: int) -> list[float]:
    """Each group's summed cost."""
    out = [0.0] * groups
    for node, g in placement.items():
        out[g] += costs.get(node, 0.0)
    return out
