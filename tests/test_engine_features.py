"""Feature edges in the engine: a graph mixing logits edges (ce, kl, dkd) and feature edges
(attention, hint with its regressor, similarity, rkd) from trained nodes and a frozen teacher
trains exactly as a plain per-node loop written from the papers' formulas."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import ktg_dsl
from ktg_dsl.check import check_data
from ktg_dsl.compiler import make_optimizer
from ktg_dsl.components.data import DatasetInfo
from ktg_dsl.engine import Engine, Program

from .test_losses import at_reference, dkd_reference, rkd_reference, sp_reference

INFO = DatasetInfo(5, (3, 8, 8))
TAPS = {"f2": "block2", "f3": "block3"}
EDGES: list[dict[str, Any]] = [
    {"to": "a", "from": "labels"},
    {"to": "b", "from": "labels", "gate": "negative_linear"},
    {"to": "a", "from": "b", "gate": "correct", "loss": {"type": "kl", "temperature": 4.0}},
    {"to": "a.f2", "from": "t.f2", "loss": "attention", "gate": "positive_linear"},
    {"to": "a.f3", "from": "t.f3", "loss": "hint"},
    {"to": "b", "from": "a", "loss": "dkd"},
    {"to": "b.f3", "from": "a.f3", "loss": "similarity"},
    {"to": "b.f3", "from": "t.f3", "loss": "rkd", "gate": {"type": "linear", "start": 0.5}},
]


def spec(edges: list[dict[str, Any]] = EDGES, **train: Any) -> ktg_dsl.Spec:
    data = {
        "version": 1,
        "name": "features",
        "seed": 5,
        "data": {"dataset": {"type": "synthetic", "num_classes": 5, "image_size": 8}},
        "train": {"epochs": 3, "precision": "fp32", "device": "cpu", **train},
        "defaults": {"optimizer": {"type": "sgd", "lr": 0.02, "momentum": 0.9}},
        "nodes": {
            "a": {"model": {"type": "small_cnn", "width": 4}, "taps": TAPS},
            "b": {"model": {"type": "small_cnn", "width": 4}, "taps": TAPS},
            "t": {"model": {"type": "small_cnn", "width": 8}, "taps": TAPS, "frozen": True},
        },
        "edges": edges,
    }
    report = check_data(data)
    assert report.ok, [i.format() for i in report.issues]
    assert report.spec is not None
    return report.spec


def kl(z_r: torch.Tensor, z_s: torch.Tensor, t: float) -> torch.Tensor:
    p = F.softmax(z_s / t, 1)
    return (p * (p.log() - F.log_softmax(z_r / t, 1))).sum(1) * t * t


def forward_with_taps(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        model.get_submodule(path).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out)
        )
        for name, path in TAPS.items()
    ]
    z = model(x)
    for h in hooks:
        h.remove()
    return z, seen


def reference_step(models: dict, adapters: dict, opts: dict, x, y, epoch: int, epochs: int):
    """One step of every trained node, per node, the way the papers' code writes it."""
    w = epoch / (epochs - 1)  # positive_linear; negative_linear is 1 - w
    out = {}
    for name, model in models.items():
        if name == "t":
            with torch.no_grad():
                out[name] = forward_with_taps(model, x)
        else:
            model.train()
            out[name] = forward_with_taps(model, x)
    (za, fa), (zb, fb), (_, ft) = out["a"], out["b"], out["t"]
    correct_b = (zb.detach().argmax(1) == y).float()
    hint = adapters["a"](fa["f3"])
    loss_a = (
        F.cross_entropy(za, y)
        + (kl(za, zb.detach(), 4.0) * correct_b).mean()
        + w * at_reference(fa["f2"], ft["f2"])
        + 100.0 * F.mse_loss(hint, ft["f3"])
    )
    loss_b = (
        (1 - w) * F.cross_entropy(zb, y)
        + dkd_reference(zb, za.detach(), y)
        + sp_reference(fb["f3"], fa["f3"].detach())
        + (0.5 + 0.5 * w) * rkd_reference(fb["f3"], ft["f3"])
    )
    for name, loss in (("a", loss_a), ("b", loss_b)):
        opts[name].zero_grad()
        loss.backward()
        opts[name].step()


def test_one_graph_of_logits_and_feature_edges_trains_as_the_per_node_loop() -> None:
    the_spec = spec()
    program: Program = ktg_dsl.compile_spec(the_spec, data_info=INFO)
    teacher = program.nodes["t"].model
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.1 * torch.randn_like(p))
    models = {n: copy.deepcopy(program.nodes[n].model) for n in ("a", "b", "t")}
    assert len(program.nodes["a"].adapters) == 1, "the hint's regressor belongs to a"
    adapters = {"a": copy.deepcopy(next(iter(program.nodes["a"].adapters.values())))}
    ref = the_spec.defaults.optimizer
    opts = {
        "a": make_optimizer(ref, [*models["a"].parameters(), *adapters["a"].parameters()], "loop"),
        "b": make_optimizer(ref, models["b"].parameters(), "loop"),
    }
    engine = Engine(program)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 5, (16,), generator=g))]
    for epoch in (0, 1, 2):
        for x, y in batches * 2:
            engine.train_step(x, y, epoch)
            adapters["a"].train()
            reference_step(models, adapters, opts, x, y, epoch, 3)
    for name in ("a", "b", "t"):
        for key, value in models[name].state_dict().items():
            torch.testing.assert_close(
                program.nodes[name].model.state_dict()[key], value, rtol=2e-4, atol=2e-5
            )
    mine = next(iter(program.nodes["a"].adapters.values())).state_dict()
    for key, value in adapters["a"].state_dict().items():
        torch.testing.assert_close(mine[key], value, rtol=2e-4, atol=2e-5)


def test_taps_no_open_edge_needs_are_never_hooked() -> None:
    """At epoch 0 the attention edge (positive_linear) is closed: its f2 taps are not read;
    the hint (through) is open: f3 is. Hooks live for one forward only."""
    edges = [e for e in EDGES if e["to"] in ("a", "a.f2", "a.f3", "b")]
    program = ktg_dsl.compile_spec(spec(edges), data_info=INFO)
    engine = Engine(program)
    first, later = engine.step_summary(0), engine.step_summary(1)
    assert first.taps == {"a": ["f3"], "t": ["f3"]}
    assert ("a.f2", "t.f2") not in first.weights and first.weights[("a.f3", "t.f3")] == 1.0
    assert later.taps == {"a": ["f2", "f3"], "t": ["f2", "f3"]}
    assert later.weights[("a.f2", "t.f2")] == pytest.approx(0.5)
    modules = [
        program.nodes[n].model.get_submodule(path) for n in ("a", "t") for path in TAPS.values()
    ]
    calls = {id(m): 0 for m in modules}
    for m in modules:  # a hook of our own counts every forward of the tapped modules
        m.register_forward_hook(lambda mod, *_: calls.__setitem__(id(mod), calls[id(mod)] + 1))
    hooks = [len(m._forward_hooks) for m in modules]
    engine.train_step(torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,)), 0)
    assert [len(m._forward_hooks) for m in modules] == hooks, "the engine's hooks are gone"
    assert all(v == 1 for v in calls.values())  # one forward each (the teacher too)


def test_an_adapter_whose_edge_opens_late_trains_with_fused_sgd() -> None:
    """The hint edge's adapter gets its first gradient only once its gate opens (epoch 2):
    torch's fused SGD, which fails on a mix of parameters with and without momentum buffers,
    trains it as the multi-tensor SGD does."""
    edges = [
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a", "from": "b"},
        {"to": "b.f3", "from": "a.f3", "loss": "hint", "gate": {"type": "linear", "start": 0.0}},
    ]
    states = {}
    for fused in ("on", "off"):
        program = ktg_dsl.compile_spec(spec(edges, fused_optimizer=fused), data_info=INFO)
        assert bool(program.nodes["b"].optimizer.defaults.get("fused")) == (fused == "on")
        engine = Engine(program)
        g = torch.Generator().manual_seed(1)
        for epoch in range(3):
            for _ in range(2):
                x, y = torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 5, (8,), generator=g)
                engine.train_step(x, y, epoch)
            engine.end_epoch(epoch)
        states[fused] = program.nodes["b"].adapters.state_dict()
    assert states["on"].keys() == states["off"].keys() and states["on"]
    for key, value in states["on"].items():
        torch.testing.assert_close(value, states["off"][key], rtol=1e-5, atol=1e-6)
