"""A self-supervised graph on two graph groups (gloo, two CPU ranks) trains exactly as one
process: the same two views on every rank, projections exchanged as logits are, each rank's
receivers' views losses, kNN gathered so that every rank holds every node's score. Replicas
(data_parallel above 1) are refused before training."""

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
from ktg_dsl.run.data import compile_spec
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


def train(engine: Any, epochs: int) -> list[Any]:
    stats = []
    for epoch in range(epochs):
        for step, (x, y) in enumerate(views()):
            engine.train_step(x, y, epoch, step)
        stats.append(engine.end_epoch(epoch))
    return stats


def worker(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    spec = ssl_spec(EDGES)
    program = compile_spec(spec, data_info=INFO, device="cpu", precision="fp32")
    mesh = Mesh(rank, world, world, 1, {0: 0, 1: 1, 2: 1}, {})
    graph = dist.new_group(mesh.graph_ranks(0))
    engine = DistributedSelfSupervisedEngine(program, mesh, graph, None)
    stats = train(engine, spec.train.epochs)
    states = {n.name: n.model.state_dict() for n in engine.trainable}
    torch.save({"states": states, "stats": stats, "eval": engine.evaluate_metrics(knn_data())}, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_graph_groups_train_as_one_process() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"rank{r}.pt") for r in range(2)]
        ctx = mp.get_context("spawn")
        store = os.path.join(tmp, "store")
        procs = [ctx.Process(target=worker, args=(r, 2, store, outs[r])) for r in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0, f"rank failed with exit code {p.exitcode}"
        ranks = [torch.load(o, weights_only=False) for o in outs]
    spec = ssl_spec(EDGES)
    program = compile_spec(spec, data_info=INFO, device="cpu", precision="fp32")
    engine = SelfSupervisedEngine(program)
    stats = train(engine, spec.train.epochs)
    evaluated = engine.evaluate_metrics(knn_data())
    for name, rank in (("a", 0), ("b", 1), ("c", 1)):
        for key, value in ranks[rank]["states"][name].items():
            torch.testing.assert_close(
                value, program.nodes[name].model.state_dict()[key], rtol=2e-4, atol=2e-5
            )
    for r in ranks:
        for mine, theirs in zip(r["stats"], stats, strict=True):
            for name in theirs:
                assert mine[name]["train_loss"] == pytest.approx(theirs[name]["train_loss"], 1e-4)
                assert mine[name]["train_top1"] == pytest.approx(theirs[name]["train_top1"])
        assert {k: v["knn_top1"] for k, v in r["eval"].items()} == pytest.approx(
            {k: v["knn_top1"] for k, v in evaluated.items()}
        )


def test_replicas_of_a_self_supervised_graph_are_refused() -> None:
    spec = ssl_spec(EDGES, distributed={"data_parallel": 2})
    with pytest.raises(ArgumentError, match="data_parallel 2 replicas"):
        plan_mesh(spec, None, 0, 2)  # type: ignore[arg-type]  # refused before the graph
