"""A self-supervised graph on two CPU ranks (gloo) trains exactly as one process: on two graph
groups (projections exchanged as logits are, each rank's receivers' views losses), and as two
replicas of every node (each replica's views gathered with their gradient, so NT-Xent and the
similarity matrices see the whole batch; models without BatchNorm, whose statistics would be
each replica's). kNN scores are gathered so that every rank holds every node's."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ktg_dsl.engine.mesh import Mesh
from ktg_dsl.engine.ssl import KnnData, SelfSupervisedEngine
from ktg_dsl.engine.ssl_mesh import DistributedSelfSupervisedEngine
from ktg_dsl.errors import ArgumentError
from ktg_dsl.run.data import checked, compile_spec
from ktg_dsl.run.distributed import plan_mesh

from .test_ssl_engine import EDGES, INFO, ssl_spec


def views(n: int = 2, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(11)
    return [
        (torch.randn(size, 2, 3, 8, 8, generator=g), torch.randint(0, 5, (size,), generator=g))
        for _ in range(n)
    ]


def knn_data() -> KnnData:
    g = torch.Generator().manual_seed(12)
    bank = [(torch.randn(10, 3, 8, 8, generator=g), torch.arange(10) % 5)]
    return KnnData(bank, [(bank[0][0][:6] + 0.05, bank[0][1][:6])])


def train(engine: Any, epochs: int, shard: tuple[int, int] = (0, 1)) -> list[Any]:
    stats = []
    replica, replicas = shard
    for epoch in range(epochs):
        for step, (x, y) in enumerate(views()):
            part = x.tensor_split(replicas)[replica], y.tensor_split(replicas)[replica]
            engine.train_step(*part, epoch, step)
        stats.append(engine.end_epoch(epoch))
    return stats


def staged() -> dict[str, Any]:
    from ktg_dsl.registry import load_plugins

    load_plugins(["ktg_test_plugin"])
    return {n: {"model": {"type": "staged_net", "width": 4}} for n in "abc"}


def worker(rank: int, world: int, store: str, out: str, replicas: int) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    spec = ssl_spec(EDGES, staged() if replicas > 1 else None)
    program = compile_spec(spec, data_info=INFO, device="cpu", precision="fp32")
    placement = {0: 0, 1: 0, 2: 0} if replicas > 1 else {0: 0, 1: 1, 2: 1}
    mesh = Mesh(rank, world, world // replicas, replicas, placement, {})
    graphs = [dist.new_group(mesh.graph_ranks(d)) for d in range(replicas)]
    groups = [dist.new_group(mesh.replica_ranks(g)) for g in range(mesh.groups)]
    graph = graphs[mesh.replica] if mesh.groups > 1 else None
    replica = groups[mesh.group] if replicas > 1 else None
    engine = DistributedSelfSupervisedEngine(program, mesh, graph, replica)
    stats = train(engine, spec.train.epochs, (mesh.replica, replicas))
    states = {n.name: n.model.state_dict() for n in engine.trainable}
    torch.save({"states": states, "stats": stats, "eval": engine.evaluate_metrics(knn_data())}, out)
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2], ids=["graph-groups", "replicas"])
def test_two_ranks_train_as_one_process(replicas: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"rank{r}.pt") for r in range(2)]
        ctx = mp.get_context("spawn")
        store = os.path.join(tmp, "store")
        procs = [
            ctx.Process(target=worker, args=(r, 2, store, outs[r], replicas)) for r in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0, f"rank failed with exit code {p.exitcode}"
        ranks = [torch.load(o, weights_only=False) for o in outs]
    spec = ssl_spec(EDGES, staged() if replicas > 1 else None)
    program = compile_spec(spec, data_info=INFO, device="cpu", precision="fp32")
    engine = SelfSupervisedEngine(program)
    stats = train(engine, spec.train.epochs)
    evaluated = engine.evaluate_metrics(knn_data())
    homes = (("a", 0), ("b", 0), ("c", 0)) if replicas > 1 else (("a", 0), ("b", 1), ("c", 1))
    for name, rank in homes:
        for key, value in ranks[rank]["states"][name].items():
            torch.testing.assert_close(
                value, program.nodes[name].model.state_dict()[key], rtol=2e-4, atol=2e-5
            )
    for r in ranks:
        for mine, theirs in zip(r["stats"], stats, strict=True):
            for name in theirs:
                # abs: a near-zero similarity KL (collapsed tiny nodes) is float noise
                want = pytest.approx(theirs[name]["train_loss"], rel=1e-4, abs=1e-6)
                assert mine[name]["train_loss"] == want
                assert mine[name]["train_top1"] == pytest.approx(theirs[name]["train_top1"])
        assert {k: v["knn_top1"] for k, v in r["eval"].items()} == pytest.approx(
            {k: v["knn_top1"] for k, v in evaluated.items()}
        )


def test_replicas_need_equal_shares_of_every_batch() -> None:
    spec = ssl_spec(EDGES, distributed={"data_parallel": 2})
    graph = checked(spec)
    assert plan_mesh(spec, graph, 0, 2).replicas == 2  # batch 64, last batch dropped
    for bad in ({"batch_size": 63}, {"drop_last": False}):
        odd = spec.model_copy(update={"data": spec.data.model_copy(update=bad)})
        with pytest.raises(ArgumentError, match="equal shares of every batch"):
            plan_mesh(odd, graph, 0, 2)
