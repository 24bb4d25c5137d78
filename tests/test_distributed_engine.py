"""The distributed engine on CPU with gloo, two ranks in this machine: a graph-parallel step
(G=2, D=1) trains exactly as the single-process engine (fp32 tolerance), with every gate kind,
a frozen teacher, the correct gate, feature edges that cross ranks and per-step gates; a
data-parallel step (G=1, D=2) matches single-process training on the same global batch to the
tolerance docs/distributed.md states."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import ktg_dsl
from ktg_dsl.components.data import DatasetInfo
from ktg_dsl.engine import Engine
from ktg_dsl.engine.distributed import DistributedEngine
from ktg_dsl.engine.mesh import Mesh

INFO = DatasetInfo(5, (3, 8, 8))
TAPS = {"f2": "block2", "f3": "block3"}
EDGES: list[dict[str, Any]] = [
    {"to": "a", "from": "labels"},
    {"to": "a", "from": "b", "gate": "positive_linear"},
    {"to": "a", "from": "c", "gate": "correct", "loss": {"type": "kl", "temperature": 4.0}},
    {"to": "a", "from": "t", "loss": {"type": "kl", "temperature": 4.0}},
    {"to": "b", "from": "labels", "gate": "negative_linear"},
    {"to": "b", "from": "a", "gate": {"type": "linear", "start": 0.3, "end": 0.9}},
    {"to": "b", "from": "t", "gate": "correct"},
    {"to": "b.f3", "from": "a.f3", "loss": "attention"},
    {"to": "c", "from": "labels", "gate": "correct"},
    {"to": "c", "from": "a", "loss": "mse"},
    {"to": "c", "from": "b", "gate": "cutoff"},
    {"to": "c.f2", "from": "t.f2", "loss": "hint"},
]


NO_BN = [  # per-sample losses only, models without BatchNorm: data parallelism is exact
    {"to": "a", "from": "labels"},
    {"to": "a", "from": "b", "gate": "positive_linear"},
    {"to": "a", "from": "c", "gate": "correct", "loss": {"type": "kl", "temperature": 4.0}},
    {"to": "b", "from": "labels", "gate": "negative_linear"},
    {"to": "b", "from": "t", "gate": "correct"},
    {"to": "b.f3", "from": "a.f3", "loss": "attention"},
    {"to": "c", "from": "labels"},
    {"to": "c", "from": "a", "loss": "mse"},
]


GATED_ADAPTER = [  # c's hint adapter is closed at first (DDP must still see its parameters)
    {"to": "a", "from": "labels"},
    {"to": "a", "from": "b"},
    {"to": "b", "from": "labels"},
    {"to": "b.f3", "from": "a.f3", "loss": "attention"},
    {"to": "c", "from": "labels"},
    {"to": "c.f2", "from": "a.f2", "loss": "hint", "gate": "positive_linear"},
]
EDGE_SETS = {"no_bn": NO_BN, "gated_adapter": GATED_ADAPTER}


def make_spec(edges: list[dict[str, Any]] | None = None, **train: Any) -> ktg_dsl.Spec:
    from ktg_dsl.check import check_data
    from ktg_dsl.registry import load_plugins

    load_plugins(["ktg_test_plugin"])
    node: dict[str, Any] = {"model": {"type": "small_cnn", "width": 4}, "taps": TAPS}
    if edges is NO_BN:
        node = {
            "model": {"type": "staged_net", "width": 4},
            "taps": {"f2": "stages.0", "f3": "stages.1"},
        }
    data = {
        "version": 1,
        "name": "dist",
        "seed": 3,
        "data": {"dataset": {"type": "synthetic", "num_classes": 5, "image_size": 8}},
        "train": {"epochs": 3, "precision": "fp32", "device": "cpu", **train},
        "defaults": {"optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9}},
        "nodes": {
            "a": node,
            "b": node,
            "c": {**node, "model": {"type": "small_cnn", "width": 8}},
            "t": {**node, "frozen": True},
        },
        "edges": edges or EDGES,
    }
    if edges is NO_BN:
        data["nodes"]["c"]["model"] = {"type": "staged_net", "width": 8}
    report = check_data(data)
    assert report.ok and report.spec is not None, [i.format() for i in report.issues]
    return report.spec


def batches(n: int = 2, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    return [
        (torch.randn(size, 3, 8, 8, generator=g), torch.randint(0, 5, (size,), generator=g))
        for _ in range(n)
    ]


def train(engine: Any, spec: ktg_dsl.Spec, shard: tuple[int, int] = (0, 1)) -> list[Any]:
    d, replicas = shard
    stats = []
    for epoch in range(spec.train.epochs):
        for step, (x, y) in enumerate(batches()):
            b = x.shape[0] // replicas
            engine.train_step(x[d * b : (d + 1) * b], y[d * b : (d + 1) * b], epoch, step)
        stats.append(engine.end_epoch(epoch))
    return stats


def worker(rank: int, world: int, store: str, placement: dict, replicas: int, out: str, train_kw):
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    edges = EDGE_SETS.get(train_kw.pop("edges", ""))
    fp16 = train_kw.pop("fp16", False)
    homes = train_kw.pop("homes", {})
    spec = make_spec(edges, **train_kw)
    program = compile_for(spec, fp16)
    mesh = Mesh(rank, world, world // replicas, replicas, placement, homes)
    teacher = program.nodes["t"].model
    teacher_forwards = [0]
    hook = teacher.register_forward_hook(
        lambda *_: teacher_forwards.__setitem__(0, teacher_forwards[0] + 1)
    )
    # every rank makes every group, in the same order (torch.distributed's rule)
    graphs = [dist.new_group(mesh.graph_ranks(d)) for d in range(replicas)]
    groups = [dist.new_group(mesh.replica_ranks(g)) for g in range(mesh.groups)]
    graph = graphs[mesh.replica] if mesh.groups > 1 else None
    replica = groups[mesh.group] if replicas > 1 else None
    engine = DistributedEngine(program, mesh, graph, replica)
    stats = train(engine, spec, (mesh.replica, replicas))
    hook.remove()
    evaluated = engine.evaluate_metrics(batches(1))
    states = {n.name: n.model.state_dict() for n in engine.trainable}
    adapters = {n.name: n.adapters.state_dict() for n in engine.trainable}
    result = {"states": states, "adapters": adapters, "stats": stats, "eval": evaluated}
    torch.save({**result, "teacher_forwards": teacher_forwards[0]}, out)
    dist.destroy_process_group()


def compile_for(spec: ktg_dsl.Spec, fp16: bool = False) -> Any:
    """The program at the spec's precision, or at fp16 on the CPU (specs refuse fp16 without
    CUDA; the engine's fp16 path, autocast and a GradScaler per node, runs on any device)."""
    if not fp16:
        return ktg_dsl.compile_spec(spec, data_info=INFO, steps_per_epoch=2)
    from ktg_dsl.compiler import Target, compile_program
    from ktg_dsl.graph import link

    target = Target(torch.device("cpu"), "fp16", False)
    return compile_program(spec, link(spec), target, data_info=INFO, steps_per_epoch=2)


def run_ranks(world: int, placement: dict, replicas: int, **train_kw: Any) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"rank{r}.pt") for r in range(world)]
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(
                target=worker,
                args=(r, world, os.path.join(tmp, "store"), placement, replicas, outs[r], train_kw),
            )
            for r in range(world)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0, f"rank failed with exit code {p.exitcode}"
        return [torch.load(o, weights_only=False) for o in outs]


def single(
    edges: list[dict[str, Any]] | None = None, fp16: bool = False, **train_kw: Any
) -> tuple[Any, list[Any], dict]:
    spec = make_spec(edges, **train_kw)
    program = compile_for(spec, fp16)
    engine = Engine(program)
    stats = train(engine, spec)
    return program, stats, engine.evaluate_metrics(batches(1))


@pytest.mark.slow
@pytest.mark.parametrize(
    "train_kw",
    [{}, {"gate_unit": "step"}, {"homes": {3: 1}}],
    ids=["epoch-gates", "step", "teacher-shipped"],
)
def test_graph_parallel_equals_the_single_process_engine(train_kw: dict) -> None:
    """a on rank 0; b and c on rank 1; t (read by all three) replicated, or run by rank 1
    alone and its logits shipped to rank 0 (rank 1 reads its taps)."""
    placement = {0: 0, 1: 1, 2: 1}
    shipped = bool(train_kw.get("homes"))
    ranks = run_ranks(2, placement, 1, **train_kw)
    train_kw.pop("homes", None)
    assert (ranks[0]["teacher_forwards"] == 0) is shipped  # a reads t: it runs t unless shipped
    assert ranks[1]["teacher_forwards"] > 0
    program, stats, evaluated = single(**train_kw)
    for name, rank in (("a", 0), ("b", 1), ("c", 1)):
        for key, value in ranks[rank]["states"][name].items():
            torch.testing.assert_close(
                value, program.nodes[name].model.state_dict()[key], rtol=2e-4, atol=2e-5
            )
    hint = ranks[1]["adapters"]["c"]
    for key, value in program.nodes["c"].adapters.state_dict().items():
        torch.testing.assert_close(hint[key], value, rtol=2e-4, atol=2e-5)
    for r in ranks:  # every rank sees every node's metrics, equal to one process's
        for mine, theirs in zip(r["stats"], stats, strict=True):
            assert set(mine) == set(theirs)
            for name in theirs:
                assert mine[name]["train_loss"] == pytest.approx(
                    theirs[name]["train_loss"], rel=1e-4
                )
                assert mine[name]["train_top1"] == pytest.approx(theirs[name]["train_top1"])
                assert mine[name]["lr"] == pytest.approx(theirs[name]["lr"])
        for name, row in evaluated.items():
            assert r["eval"][name]["top1"] == pytest.approx(row["top1"])


@pytest.mark.slow
def test_data_parallel_equals_one_process_on_the_global_batch() -> None:
    """D=2: each replica takes half the batch and the gradients are averaged, which for
    per-sample losses is the whole batch's gradient: without BatchNorm, the result is the
    single process's to fp32 tolerance (docs/distributed.md says where it is not)."""
    ranks = run_ranks(2, {0: 0, 1: 0, 2: 0}, 2, edges="no_bn")
    program, stats, _ = single(NO_BN)
    for name in ("a", "b", "c"):
        for key, value in ranks[0]["states"][name].items():
            assert torch.equal(value, ranks[1]["states"][name][key]), f"replicas differ: {key}"
            torch.testing.assert_close(
                value, program.nodes[name].model.state_dict()[key], rtol=2e-4, atol=2e-5
            )
    for mine, theirs in zip(ranks[0]["stats"], stats, strict=True):
        for name in theirs:
            assert mine[name]["train_loss"] == pytest.approx(theirs[name]["train_loss"], rel=1e-4)


@pytest.mark.slow
def test_data_parallel_with_batchnorm_keeps_replicas_in_step() -> None:
    """With BatchNorm each replica normalises its half by its own statistics: the replicas'
    weights stay identical (DDP), their BN running statistics are each their own, and the
    result differs from one process on the whole batch by design."""
    ranks = run_ranks(2, {0: 0, 1: 0, 2: 0}, 2)
    for name in ("a", "b", "c"):
        a0, a1 = ranks[0]["states"][name], ranks[1]["states"][name]
        for key, value in a0.items():
            if "running" not in key and "num_batches" not in key:
                assert torch.equal(value, a1[key]), f"replicas differ at {name}.{key}"
    assert not torch.equal(
        ranks[0]["states"]["a"]["block1.1.running_mean"],
        ranks[1]["states"]["a"]["block1.1.running_mean"],
    )


@pytest.mark.slow
def test_fp16_graph_parallel_scales_each_nodes_loss_as_one_process() -> None:
    """fp16 (autocast and a GradScaler per node, on the CPU here): the ranks scale each
    node's loss before the backward, as the single-process engine does."""
    ranks = run_ranks(2, {0: 0, 1: 1, 2: 1}, 1, edges="gated_adapter", fp16=True)
    program, stats, _ = single(GATED_ADAPTER, fp16=True)
    for name, rank in (("a", 0), ("b", 1), ("c", 1)):
        for key, value in ranks[rank]["states"][name].items():
            torch.testing.assert_close(
                value, program.nodes[name].model.state_dict()[key], rtol=2e-3, atol=2e-4
            )
    for mine, theirs in zip(ranks[0]["stats"], stats, strict=True):
        for name in theirs:
            assert mine[name]["train_loss"] == pytest.approx(theirs[name]["train_loss"], rel=1e-3)


@pytest.mark.slow
def test_replicas_with_a_closed_adapter_edge_and_fp16() -> None:
    """D=2: c's hint adapter gets no gradient while its edge is closed, and b's only
    feature edge reads a tap: DDP still sees a gradient for every parameter, every step."""
    ranks = run_ranks(2, {0: 0, 1: 0, 2: 0}, 2, edges="gated_adapter", fp16=True)
    for name in ("a", "b", "c"):
        for key, value in ranks[0]["states"][name].items():
            if "running" not in key and "num_batches" not in key:
                assert torch.equal(value, ranks[1]["states"][name][key]), f"{name}.{key}"
    adapters = ranks[0]["adapters"]["c"]
    assert adapters, "c has the hint edge's adapter"
    for key, value in adapters.items():  # the adapter's BatchNorm statistics are each own
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, ranks[1]["adapters"]["c"][key]), f"adapter {key}"


def test_the_mesh_places_and_owns() -> None:
    mesh = Mesh(rank=3, world=4, groups=2, replicas=2, placement={0: 0, 1: 1, 2: 1})
    assert (mesh.group, mesh.replica) == (1, 1)
    assert mesh.local(1) and not mesh.local(0)
    assert mesh.owner(1) == 2 and mesh.graph_ranks(1) == [1, 3] and mesh.replica_ranks(1) == [2, 3]
    from ktg_dsl.engine.mesh import balance

    assert balance({0: 3.0, 1: 1.0, 2: 1.0, 3: 1.0}, 2) == {0: 0, 1: 1, 2: 1, 3: 1}
    assert balance({0: 1.0, 1: 1.0}, 2) == {0: 0, 1: 1}
