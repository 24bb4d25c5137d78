"""The self-supervised engine against a plain per-node loop: each node forwards its two views
on its own, its loss is the written sum of its edges' terms (NT-Xent and the similarity KL
written out here from their papers' formulas, not ktg's kernels), each node backwards on its
own. Same weights, same views: losses and every gradient must agree to fp32 tolerance."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from ktg_dsl.check import parse_data
from ktg_dsl.components.data import DatasetInfo
from ktg_dsl.engine.knn import knn_top1
from ktg_dsl.engine.ssl import KnnData, SelfSupervisedEngine, as_views
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.run.data import compile_spec

INFO = DatasetInfo(5, (3, 8, 8))


def ssl_spec(edges: list[dict[str, Any]], nodes: dict[str, Any] | None = None, **train: Any) -> Any:
    data = {
        "version": 1,
        "name": "ssl-eq",
        "seed": 5,
        "data": {"dataset": {"type": "synthetic", "num_classes": 5, "image_size": 8}},
        "train": {"epochs": 4, "precision": "fp32", "device": "cpu", **train},
        "defaults": {"optimizer": {"type": "sgd", "lr": 0.1}, "scheduler": "cosine"},
        "nodes": nodes
        or {
            "a": {"model": {"type": "small_cnn", "width": 8}},
            "b": {"model": {"type": "small_cnn", "width": 4}},
            "c": {"model": {"type": "small_cnn", "width": 4}},
        },
        "edges": edges,
        "self_supervised": {"head": {"dim": 16}, "knn": {"k": 3}},
    }
    spec, issues = parse_data(data)
    assert spec is not None and not [i for i in issues if i.is_error], issues
    return spec


EDGES = [
    {"to": "a", "from": "labels"},
    {"to": "a", "from": "b", "gate": "positive_linear"},
    {"to": "a", "from": "c", "loss": "view_mse"},
    {"to": "b", "from": "labels", "gate": "negative_linear"},
    {"to": "b", "from": "a"},
    {"to": "c", "from": "labels"},
    {"to": "c", "from": "a", "loss": {"type": "similarity_kl", "temperature": 0.5}},
    {"to": "c", "from": "b", "gate": "cutoff"},
]


def nt_xent(v: torch.Tensor, t: float) -> torch.Tensor:
    """SimCLR (Chen et al. 2020), eq. 1 averaged over the 2B anchors, written as a loop."""
    z = F.normalize(torch.cat([v[:, 0], v[:, 1]]), dim=1)
    n, b = z.shape[0], v.shape[0]
    total = z.new_zeros(())
    for i in range(n):
        others = [j for j in range(n) if j != i]
        logits = torch.stack([z[i] @ z[j] / t for j in others])
        positive = others.index((i + b) % n)
        total = total - torch.log_softmax(logits, 0)[positive]
    return total / n


def sim_kl(r: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
    """DoGo: KL(sender || receiver) of the row-softmaxed view-1 x view-2 cosine matrices, x T^2,
    averaged over the rows."""

    def matrix(v: torch.Tensor) -> torch.Tensor:
        z = F.normalize(v, dim=-1)
        return z[:, 0] @ z[:, 1].t() / t

    p = torch.softmax(matrix(s), 1)
    return (p * (p.log() - torch.log_softmax(matrix(r), 1))).sum(1).mean() * t * t


def reference(spec: Any, program: Any, x: torch.Tensor, epoch: int) -> tuple[dict, dict]:
    """Per-node losses and gradients, node by node (copies of the program's models)."""
    models = {n.name: copy.deepcopy(n.model).train() for n in program.nodes.values()}
    both = torch.cat([x[:, 0], x[:, 1]])
    views = {k: as_views(m(both).unsqueeze(0))[0] for k, m in models.items()}
    t_of = {"nt_xent": 0.3, "similarity_kl": 0.3}
    losses: dict[str, torch.Tensor] = {k: torch.zeros(()) for k in models}
    weights = program.incoming_weights(epoch)
    for e in EDGES:
        w = weights[program.names.index(e["to"])].get(e["from"], 0.0)
        if w == 0.0:
            continue
        loss = e.get("loss", "nt_xent" if e["from"] == "labels" else "similarity_kl")
        kind = loss if isinstance(loss, str) else loss["type"]
        t = loss["temperature"] if isinstance(loss, dict) else t_of.get(kind, 0.0)
        r = views[e["to"]]
        if kind == "nt_xent":
            term = nt_xent(r, t)
        elif kind == "similarity_kl":
            term = sim_kl(r, views[e["from"]].detach(), t)
        else:
            term = ((r - views[e["from"]].detach()) ** 2).mean()
        losses[e["to"]] = losses[e["to"]] + w * term
    grads = {}
    for k, m in models.items():
        m.zero_grad()
        losses[k].backward(retain_graph=True)
        grads[k] = [p.grad.clone() for p in m.parameters()]
    return {k: float(v.detach()) for k, v in losses.items()}, grads


@pytest.mark.parametrize(("epoch", "reduction"), [(0, "sum"), (2, "sum"), (2, "mean")])
def test_fused_step_equals_a_per_node_loop(epoch: int, reduction: str) -> None:
    spec = ssl_spec(EDGES, peer_reduction=reduction)
    program = compile_spec(spec, device="cpu", precision="fp32", data_info=INFO)
    engine = SelfSupervisedEngine(program)
    x = torch.randn(6, 2, 3, 8, 8, generator=torch.Generator().manual_seed(epoch))
    want, want_grads = reference(spec, program, x, epoch)
    for node in program.nodes.values():  # look at the gradients the step computes
        assert node.optimizer is not None
        node.optimizer.step = lambda *a, **k: None  # type: ignore[method-assign]
    got = engine.train_step(x, torch.zeros(6, dtype=torch.long), epoch)
    for name, loss in got.items():
        assert float(loss) == pytest.approx(want[name], rel=1e-5, abs=1e-6), name
        grads = [p.grad for p in program.nodes[name].model.parameters()]
        for g, w in zip(grads, want_grads[name], strict=True):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


def test_knn_evaluation_and_its_refusals() -> None:
    spec = ssl_spec([*EDGES[:1], {"to": "b", "from": "labels"}, {"to": "c", "from": "labels"}])
    program = compile_spec(spec, device="cpu", precision="fp32", data_info=INFO)
    engine = SelfSupervisedEngine(program)
    gen = torch.Generator().manual_seed(0)
    bank = [(torch.randn(8, 3, 8, 8, generator=gen), torch.arange(8) % 5)]
    query = [(bank[0][0][:4] + 0.01, bank[0][1][:4])]
    out = engine.evaluate_metrics(KnnData(bank, query))
    assert set(out) == {"a", "b", "c"}
    assert all(0.0 <= v["knn_top1"] <= 100.0 and v["top1"] == v["knn_top1"] for v in out.values())
    assert "probe_top1" not in out["a"]
    engine.knn = dataclasses.replace(engine.knn, linear_probe=True)
    probed = engine.evaluate_metrics(KnnData(bank, query))
    assert probed["a"]["knn_top1"] == out["a"]["knn_top1"] and 0 <= probed["a"]["probe_top1"] <= 100
    with pytest.raises(KtgRuntimeError, match="memory bank"):
        engine.evaluate_metrics(query)
    feats, bank_y = engine.features(bank)  # the engine's vote is knn.py's, with the spec's k
    query_feats, query_y = engine.features(query)
    engine.knn = dataclasses.replace(engine.knn, weighted=True, temperature=0.5)
    weighted = engine.evaluate_metrics(KnnData(bank, query))
    for name, i in (("a", 0), ("c", 2)):
        want = knn_top1(feats[i], bank_y, query_feats[i], query_y, num_classes=5, k=3,
                        weighted=True, temperature=0.5)  # fmt: skip
        assert weighted[name]["knn_top1"] == want
    small_bank = [(bank[0][0][:2], bank[0][1][:2])]  # 2 samples, k = 3
    with pytest.raises(KtgRuntimeError, match=r"lower self_supervised\.knn\.k"):
        engine.evaluate_metrics(KnnData(small_bank, query))
    with pytest.raises(KtgRuntimeError, match="two views"):
        engine.train_step(bank[0][0], bank[0][1], 0)
