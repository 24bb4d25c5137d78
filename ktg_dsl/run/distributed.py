"""Running on a mesh of processes (docs/distributed.md): started by ``torchrun`` or by
``ktg train --nproc N`` (torch.distributed's own launcher), every process reads its rank from
the environment, checks the mesh the spec asks for against the world it is in, places the nodes
(balanced by each model's forward FLOPs, the same on every rank), joins the process group and
makes the graph and replica groups. Everything that can be wrong is said before training."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..engine.distributed import DistributedEngine
from ..engine.mesh import Mesh, balance, loads
from ..engine.program import Program
from ..engine.ssl_mesh import DistributedSelfSupervisedEngine
from ..errors import ArgumentError, choices_hint
from ..graph import GraphReport
from ..spec.components import build
from ..spec.schema import Spec
from .threads import SHARE_ENV, apply_threads, available_cores

TORCHRUN_SETS = "torchrun sets it for each process; unset it to train on one process"


def env_int(
    name: str, default: int, low: int = 0, high: int | None = None, why: str = TORCHRUN_SETS
) -> int:
    """A whole number from the environment (what torchrun sets), read as carefully as a spec
    value: anything else is a wrong command line (ArgumentError, exit 2), not a traceback;
    ``why``: what the variable is, in the message."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    top = f" and below {high}" if high is not None else ""
    if value is None or value < low or (high is not None and value >= high):
        raise ArgumentError(
            f"the environment sets {name}={text[:40]!r}: expected a whole number from "
            f"{low}{top} ({why})"
        )
    return value


def world_size() -> int:
    """The number of processes this one is part of (1 outside torchrun); a world of several
    needs each process's RANK."""
    world = env_int("WORLD_SIZE", 1, low=1)
    if world > 1 and "RANK" not in os.environ:
        raise ArgumentError(
            f"the environment sets WORLD_SIZE={world} but not RANK: start the processes with "
            "torchrun or `ktg train --nproc N`, or unset WORLD_SIZE to train on one process"
        )
    env_int("RANK", 0, high=world if world > 1 else None)  # a plain run ignores it, if it reads
    return world


def restarted() -> bool:
    """Whether torchrun restarted the group after a rank died (resume from last.pt)."""
    return env_int("TORCHELASTIC_RESTART_COUNT", 0) > 0


@dataclass
class Cluster:
    """This process's place in the mesh, its device and its process groups."""

    mesh: Mesh
    device: torch.device
    graph_group: Any
    replica_group: Any
    remote: frozenset[str]  # trained nodes of other groups: built on the meta device here

    @property
    def shard(self) -> tuple[int, int]:
        return self.mesh.replica, self.mesh.replicas

    def engine(self, program: Program) -> DistributedEngine:
        make = DistributedEngine if program.knn is None else DistributedSelfSupervisedEngine
        return make(program, self.mesh, self.graph_group, self.replica_group)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def node_costs(
    spec: Spec, graph: GraphReport, names: list[str], known: dict[int, float] | None = None
) -> dict[int, float]:
    """The forward FLOPs for one sample of each node named, counted on the meta device;
    ``known`` holds counts made before (by node index), and takes the new ones."""
    from torch.utils.flop_counter import FlopCounterMode

    info = graph.data_info
    shape = info.input_shape if info and info.input_shape else (3, 32, 32)
    costs = known if known is not None else {}
    for index, name in enumerate(spec.node_names):
        if name not in names or index in costs:
            continue
        classes = graph.class_counts.get(name) or 10
        with torch.device("meta"):
            model = build(spec.nodes[name].model, num_classes=classes, in_channels=shape[0])
            with FlopCounterMode(display=False) as counter:
                model(torch.empty(1, *shape))
        costs[index] = float(counter.get_total_flops()) or 1.0
    return costs


def plan_mesh(spec: Spec, graph: GraphReport, rank: int, world: int) -> Mesh:
    """The mesh the spec asks for in a world of ``world`` ranks; ArgumentError (exit 2)
    naming what does not fit."""
    cfg = spec.train.distributed
    d = cfg.data_parallel
    trained = [n for n in spec.node_names if n not in graph.frozen]
    if world % d:
        raise ArgumentError(
            f"{world} processes cannot hold train.distributed.data_parallel: {d} replicas of "
            f"every node; start a multiple of {d} processes"
        )
    if spec.data.batch_size < d:
        raise ArgumentError(
            f"data.batch_size {spec.data.batch_size} is cut into train.distributed."
            f"data_parallel: {d} shares: a replica would train on nothing at every step; "
            f"set batch_size to at least {d}, or data_parallel lower"
        )
    uneven = spec.data.batch_size % d or not spec.data.drop_last
    if spec.self_supervised is not None and d > 1 and uneven:
        raise ArgumentError(
            f"a self-supervised graph's {d} replicas gather each other's views, which needs "
            f"equal shares of every batch: set data.batch_size to a multiple of {d} "
            f"(it is {spec.data.batch_size}) and data.drop_last: true"
        )
    g = world // d
    if cfg.graph_groups != "auto" and cfg.graph_groups != g:
        raise ArgumentError(
            f"train.distributed.graph_groups is {cfg.graph_groups}, but {world} processes with "
            f"data_parallel {d} make {g} groups; start {cfg.graph_groups * d} processes, or set "
            "graph_groups: auto"
        )
    if g > len(trained):
        raise ArgumentError(
            f"{world} processes are more than the {len(trained)} trained nodes x data_parallel "
            f"{d} can use ({len(trained) * d}); start fewer, or raise data_parallel"
        )
    busy = [n for n, c in spec.nodes.items() if c.device]
    if busy:
        raise ArgumentError(
            f"nodes.{busy[0]}.device places a node in one process; across processes each "
            "rank has its own device: remove it, or use train.distributed.placement"
        )
    costs: dict[int, float] = {}  # counted once, for the placement and the teachers' homes
    placement = _placement(spec, graph, trained, g, costs)
    return Mesh(rank, world, g, d, placement, teacher_homes(spec, graph, placement, g, costs))


# Ship a teacher's logits (4 bytes a class a sample, in the exchange that runs anyway) rather
# than run it on every group that reads it when its forward costs more than this many FLOPs
# per byte shipped: any real teacher (resnet110 on CIFAR-100: ~1,260,000; small_cnn on the
# digits: ~20,000).
SHIP_FLOPS_PER_BYTE = 1000.0


def teacher_homes(
    spec: Spec,
    graph: GraphReport,
    placement: dict[int, int],
    groups: int,
    known: dict[int, float] | None = None,
) -> dict[int, int]:
    """Frozen teachers read by several groups that one group runs for all: the group that
    reads its taps (taps never cross for a teacher), else the least loaded reader. A teacher
    read by one group, or whose taps several groups read, or too cheap to be worth it, runs
    where it is read."""
    index = {n: i for i, n in enumerate(spec.node_names)}
    readers: dict[str, set[int]] = {}
    tapped: dict[str, set[int]] = {}
    for e in (e for t in graph.frozen for e in graph.readers(t)):  # what a teacher reaches
        if index[e.receiver] not in placement:
            continue
        readers.setdefault(e.sender, set()).add(placement[index[e.receiver]])
        if e.sender_tap is not None:
            tapped.setdefault(e.sender, set()).add(placement[index[e.receiver]])
    shared = sorted(t for t, r in readers.items() if len(r) > 1 and len(tapped.get(t, ())) < 2)
    if not shared:
        return {}
    costs = node_costs(
        spec, graph, [*shared, *(n for n in spec.node_names if index[n] in placement)], known
    )
    load = loads(placement, costs, groups)
    homes: dict[int, int] = {}
    for t in sorted(shared, key=lambda n: (-costs[index[n]], index[n])):
        shipped = 4 * (graph.class_counts.get(t) or 10)
        if costs[index[t]] < SHIP_FLOPS_PER_BYTE * shipped:
            continue
        home = min(tapped.get(t) or readers[t], key=lambda g: (load[g], g))
        homes[index[t]] = home
        load[home] += costs[index[t]]
    return homes


def _placement(
    spec: Spec, graph: GraphReport, trained: list[str], groups: int, costs: dict[int, float]
) -> dict[int, int]:
    index = {n: i for i, n in enumerate(spec.node_names)}
    written = spec.train.distributed.placement
    if written is None:
        return balance(node_costs(spec, graph, trained, costs), groups)
    for name, group in written.items():
        if name not in index:
            raise ArgumentError(
                f"train.distributed.placement names '{name}', which is not a node ("
                f"{choices_hint(name, spec.node_names)})"
            )
        if name in graph.frozen:
            raise ArgumentError(
                f"train.distributed.placement places '{name}', a frozen teacher: ktg places "
                "teachers (where they are read); remove it from the placement"
            )
        if group >= groups:
            raise ArgumentError(
                f"train.distributed.placement puts '{name}' on group {group}, but there are "
                f"{groups} groups (0..{groups - 1})"
            )
    missing = [n for n in trained if n not in written]
    if missing:
        raise ArgumentError(
            f"train.distributed.placement does not place {', '.join(missing)}: place every "
            "node that trains, or leave placement out"
        )
    empty = sorted(set(range(groups)) - set(written.values()))
    if empty:
        raise ArgumentError(f"train.distributed.placement leaves group {empty[0]} without a node")
    return {index[n]: g for n, g in written.items()}


def backend_and_device(spec: Spec, rank: int = 0) -> tuple[str, torch.device]:
    """The backend (``auto`` resolved) and this rank's device: GPU ``LOCAL_RANK`` (``rank``
    outside torchrun) with nccl, the CPU with gloo."""
    backend, wanted = spec.train.distributed.backend, spec.train.device
    gpus = torch.cuda.is_available() and dist.is_nccl_available()
    if wanted.startswith("cuda") and not torch.cuda.is_available():  # as one process says
        raise ArgumentError(
            f"train.device is '{wanted}' but CUDA is not available (set device: auto or cpu)"
        )
    if backend == "auto":
        backend = "nccl" if gpus and wanted != "cpu" else "gloo"
    if backend == "nccl" and not gpus:
        raise ArgumentError(
            "train.distributed.backend is nccl, which needs CUDA GPUs; on CPUs use gloo (or auto)"
        )
    if backend == "nccl" and wanted == "cpu":
        raise ArgumentError(
            "train.distributed.backend is nccl (GPUs) but train.device is cpu: set one of "
            "them to auto, or backend: gloo to train on CPUs"
        )
    if backend == "gloo" and wanted.startswith("cuda"):
        raise ArgumentError(
            f"train.distributed.backend is gloo, which trains on CPUs here, but train.device "
            f"is {wanted}: use backend nccl (or auto) on GPUs"
        )
    if backend == "gloo" and not dist.is_gloo_available():
        raise ArgumentError("this PyTorch has no gloo backend; use nccl on GPUs")
    if backend == "nccl":
        local, count = env_int("LOCAL_RANK", rank), torch.cuda.device_count()
        if local >= count:
            raise ArgumentError(
                f"{local + 1} processes on this machine but {count} GPU(s): with nccl every "
                f"process needs its own GPU; start at most {count} per machine"
            )
        return backend, torch.device("cuda", local)
    return backend, torch.device("cpu")


def start(spec: Spec, graph: GraphReport) -> Cluster:
    """Join the process group of this torchrun world and build this rank's place in it."""
    world = world_size()
    rank = env_int("RANK", 0, high=world)
    if restarted() and os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true":
        raise ArgumentError(
            "torchrun restarted this group on the store of its first attempt, where restarted "
            "ranks wait forever to connect (pytorch/pytorch#135712): export "
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 before torchrun (ktg train --nproc does), "
            "then resume the run with --resume"
        )
    local_world = env_int("LOCAL_WORLD_SIZE", world, low=1)
    # the ranks on this machine share its cores: each rank's train.threads stays within its share
    os.environ.setdefault(SHARE_ENV, str(max(1, available_cores() // local_world)))
    apply_threads(spec.train.threads)
    return join(spec, graph, rank, world)


def join(
    spec: Spec, graph: GraphReport, rank: int, world: int, init_method: str | None = None
) -> Cluster:
    """Plan the mesh, join the process group (from the environment torchrun sets, or
    ``init_method``) and make the graph and replica groups."""
    mesh = plan_mesh(spec, graph, rank, world)
    backend, device = backend_and_device(spec, rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=spec.train.distributed.timeout)
    if init_method is None:
        dist.init_process_group(backend, timeout=timeout)
    else:
        dist.init_process_group(
            backend, init_method=init_method, rank=rank, world_size=world, timeout=timeout
        )
    dist.barrier()  # every rank is up (a restarted one imports slowly) before groups connect
    # every rank makes every group, in the same order (torch.distributed's rule)
    graph_groups = [
        dist.new_group(mesh.graph_ranks(d), timeout=timeout) for d in range(mesh.replicas)
    ]
    replica_groups = [
        dist.new_group(mesh.replica_ranks(g), timeout=timeout) for g in range(mesh.groups)
    ]
    _same_everywhere(spec, mesh)
    names = spec.node_names
    remote = frozenset(names[i] for i, g in mesh.placement.items() if g != mesh.group)
    return Cluster(mesh, device, graph_groups[mesh.replica], replica_groups[mesh.group], remote)


def _same_everywhere(spec: Spec, mesh: Mesh) -> None:
    """Every rank read the same spec and placed the nodes alike (on several machines each
    reads its own copy): otherwise their exchanges would not line up."""
    import hashlib

    mine = (hashlib.sha256(spec.model_dump_json().encode()).hexdigest(), mesh.placement)
    every: list[Any] = [None] * mesh.world
    dist.all_gather_object(every, mine)
    odd = [rank for rank, theirs in enumerate(every) if theirs != every[0]]
    if odd:
        what = "spec" if every[odd[0]][0] != every[0][0] else "placement of the nodes"
        raise ArgumentError(
            f"rank {odd[0]} has another {what} than rank 0: every process must read the same "
            "spec (and the same --set options and plugins)"
        )
