"""The engine against a plain per-node loop written as the original KTG does it: per-node
forward, a loop over edges, per-node backward and optimizer step. Same initial weights, same
batches: parameters and BN buffers must agree to fp32 tolerance."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import ktg_dsl
from ktg_dsl.check import parse_data
from ktg_dsl.compiler import Program, make_optimizer
from ktg_dsl.components.data import DatasetInfo
from ktg_dsl.engine import Engine, NonFiniteLossError
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.registry import SCHEDULERS

INFO = DatasetInfo(5, (3, 8, 8))


def make_spec(
    edges: list[dict[str, Any]], nodes: dict[str, Any] | None = None, **train: Any
) -> ktg_dsl.Spec:
    data = {
        "version": 1,
        "name": "eq",
        "seed": 3,
        "data": {"dataset": {"type": "synthetic", "num_classes": 5, "image_size": 8}},
        "train": {"epochs": 4, "precision": "fp32", "device": "cpu", **train},
        "defaults": {
            "optimizer": {
                "type": "sgd",
                "lr": 0.05,
                "momentum": 0.9,
                "weight_decay": 5e-4,
                "nesterov": True,
            },
            "scheduler": "cosine",
        },
        "nodes": nodes
        or {
            "a": {"model": {"type": "small_cnn", "width": 8}},
            "b": {"model": {"type": "small_cnn", "width": 8}},
            "c": {"model": {"type": "small_cnn", "width": 4}},
            "t": {"model": {"type": "small_cnn", "width": 4}, "frozen": True},
        },
        "edges": edges,
    }
    spec, issues = parse_data(data)
    assert spec is not None and not [i for i in issues if i.is_error], issues
    return spec


ALL_GATES = [
    {"to": "a", "from": "labels", "gate": "through"},
    {"to": "a", "from": "b", "gate": "positive_linear"},
    {"to": "a", "from": "c", "gate": "correct", "loss": {"type": "kl", "temperature": 4.0}},
    {"to": "a", "from": "t", "gate": "through", "loss": {"type": "kl", "temperature": 4.0}},
    {"to": "b", "from": "labels", "gate": "negative_linear"},
    {"to": "b", "from": "a", "gate": {"type": "linear", "start": 0.3, "end": 0.9}},
    {"to": "b", "from": "c", "gate": "cutoff"},
    {"to": "b", "from": "t", "gate": "correct"},
    {"to": "c", "from": "labels", "gate": "correct"},
    {"to": "c", "from": "a", "gate": "through", "loss": "mse"},
    # b's labels edge is not per sample, but b sends a correct-gated edge: only that edge may
    # be masked by b's correct predictions
    {"to": "c", "from": "b", "gate": "correct", "loss": {"type": "kl", "temperature": 4.0}},
]


# ---------------------------------------------------------------- the reference, as the original


def reference_train(
    program: Program,
    models: list[torch.nn.Module],
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    epochs: int,
    steps_per_epoch: int | None = None,
) -> None:
    spec = program.spec
    nodes = list(program.nodes.values())
    opts: list[Any] = []
    scheds: list[Any] = []
    for node, model in zip(nodes, models, strict=True):
        if node.frozen:
            model.eval()
            opts.append(None)
            scheds.append(None)
            continue
        ref = node.config.optimizer or spec.defaults.optimizer
        opt = make_optimizer(ref, model.parameters(), "loop")
        sref = node.config.scheduler or spec.defaults.scheduler
        scheds.append(
            SCHEDULERS.get(sref.type).build(
                sref.args, optimizer=opt, epochs=epochs, steps_per_epoch=1
            )
        )
        opts.append(opt)
    matrix = program.edge_matrix()
    per_step = spec.train.gate_unit == "step"
    for epoch in range(epochs):
        for step, (x, y) in enumerate(batches):
            if per_step:
                assert steps_per_epoch
                t, T = epoch * steps_per_epoch + step, epochs * steps_per_epoch
            else:
                t, T = epoch, epochs
            outputs = []
            for node, model in zip(nodes, models, strict=True):
                if node.frozen:
                    with torch.no_grad():
                        outputs.append(model(x))
                else:
                    model.train()
                    outputs.append(model(x))
            for i, node in enumerate(nodes):
                if node.frozen:
                    continue
                loss = None
                for j in range(len(nodes)):
                    edge = matrix[i][j]
                    if edge is None:
                        continue  # cut off: not computed
                    w = edge.gate.weight(t, T) * edge.scale
                    if w == 0.0:
                        continue
                    if j == i:
                        per_sample = F.cross_entropy(
                            outputs[i],
                            y,
                            reduction="none",
                            label_smoothing=getattr(edge.loss, "label_smoothing", 0.0),
                        )
                    elif edge.loss.name == "kl":
                        temp = edge.loss.temperature  # type: ignore[attr-defined]
                        q = F.log_softmax(outputs[i] / temp, dim=1)
                        p = F.softmax(outputs[j].detach() / temp, dim=1)
                        per_sample = (p * (p.log() - q)).sum(1) * temp * temp
                    else:
                        per_sample = (outputs[i] - outputs[j].detach()).pow(2).mean(1)
                    if edge.gate.per_sample:
                        sender = outputs[j].detach()
                        per_sample = per_sample * (sender.argmax(1) == y).float()
                    term = w * per_sample.mean()
                    loss = term if loss is None else loss + term
                if loss is not None:
                    opts[i].zero_grad()
                    loss.backward()
                    opts[i].step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nodes whose edges were all closed never stepped
            for s in scheds:
                if s is not None:
                    s.step()


def batches_for(n: int, seed: int = 0, classes: int = 5) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, classes, (16,), generator=g))
        for _ in range(n)
    ]


def run_both(
    spec: ktg_dsl.Spec, steps: int = 2, **compile_args: Any
) -> tuple[Program, list[torch.nn.Module]]:
    """Train the engine and the reference from the same start; returns the program and the
    reference's models (the initial weights are checked to have moved)."""
    program = ktg_dsl.compile_spec(spec, data_info=INFO, **compile_args)
    # teachers get deterministic "pre-trained" weights: perturb them, then copy both sides
    for node in program.nodes.values():
        if node.frozen:
            with torch.no_grad():
                for p in node.model.parameters():
                    p.add_(0.1 * torch.randn_like(p))
    models = [copy.deepcopy(n.model) for n in program.nodes.values()]
    start = [copy.deepcopy(m.state_dict()) for m in models]
    batches = batches_for(steps)
    engine = Engine(program)
    for epoch in range(spec.train.epochs):
        for step, (x, y) in enumerate(batches):
            engine.train_step(x, y, epoch, step)
        engine.end_epoch(epoch)
    reference_train(program, models, batches, spec.train.epochs, program.steps_per_epoch)
    for node, initial in zip(program.nodes.values(), start, strict=True):
        moved = any(not torch.equal(v, initial[k]) for k, v in node.model.state_dict().items())
        assert moved != node.frozen, f"{node.name} moved={moved} frozen={node.frozen}"
    return program, models


def assert_same_state(program: Program, models: list[torch.nn.Module]) -> None:
    for node, ref in zip(program.nodes.values(), models, strict=True):
        mine = node.model.state_dict()
        for key, value in ref.state_dict().items():
            if value.is_floating_point():
                torch.testing.assert_close(
                    mine[key], value, rtol=2e-4, atol=2e-5, msg=f"{node.name}.{key}"
                )
            else:
                assert torch.equal(mine[key], value), f"{node.name}.{key}"


def test_every_gate_kind_frozen_teacher_two_temperatures() -> None:
    program, models = run_both(make_spec(ALL_GATES))
    assert_same_state(program, models)


def test_peer_reduction_mean_matches_the_original_average() -> None:
    program, models = run_both(make_spec(ALL_GATES, peer_reduction="mean"))
    assert_same_state(program, models)
    a = program.edge_matrix()[0]
    assert [e.scale for e in a if e is not None and not e.is_labels] == [1 / 3] * 3


def test_per_step_gates() -> None:
    spec = make_spec(ALL_GATES, gate_unit="step", epochs=2)
    program, models = run_both(spec, steps=3, steps_per_epoch=3)
    assert_same_state(program, models)


def test_frozen_teacher_never_changes() -> None:
    spec = make_spec(ALL_GATES)
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    teacher = program.nodes["t"]
    before = copy.deepcopy(teacher.model.state_dict())
    engine = Engine(program)
    for epoch in range(2):
        for x, y in batches_for(2):
            engine.train_step(x, y, epoch)
        engine.end_epoch(epoch)
    engine.evaluate(batches_for(1))
    for k, v in teacher.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert teacher.optimizer is None and not teacher.model.training


def _count_forwards(program: Program) -> dict[str, int]:
    calls = {name: 0 for name in program.nodes}
    for name, node in program.nodes.items():
        node.model.register_forward_hook(
            lambda *_, name=name: calls.__setitem__(name, calls[name] + 1)
        )
    return calls


def test_cutoff_edge_is_exactly_no_edge() -> None:
    with_cutoff = make_spec(
        [
            {"to": "a", "from": "labels"},
            {"to": "b", "from": "labels"},
            {"to": "a", "from": "b", "gate": "cutoff"},
        ],
        nodes={
            "a": {"model": {"type": "small_cnn", "width": 4}},
            "b": {"model": {"type": "small_cnn", "width": 4}},
        },
    )
    without = make_spec(
        [{"to": "a", "from": "labels"}, {"to": "b", "from": "labels"}],
        nodes={
            "a": {"model": {"type": "small_cnn", "width": 4}},
            "b": {"model": {"type": "small_cnn", "width": 4}},
        },
    )
    p1 = ktg_dsl.compile_spec(with_cutoff, data_info=INFO)
    p2 = ktg_dsl.compile_spec(without, data_info=INFO)
    assert [(e.receiver, e.sender) for e in p1.edges] == [(e.receiver, e.sender) for e in p2.edges]

    assert Engine(p1).step_summary(0) == Engine(p2).step_summary(0)


def teacher_spec(gate: str) -> ktg_dsl.Spec:
    """A student 'a' and a frozen teacher 't' joined by one edge through ``gate``."""
    return make_spec(
        [{"to": "a", "from": "labels"}, {"to": "a", "from": "t", "gate": gate}],
        nodes={
            "a": {"model": {"type": "small_cnn", "width": 4}},
            "t": {"model": {"type": "small_cnn", "width": 4}, "frozen": True},
        },
    )


def test_teacher_behind_a_cutoff_is_never_run() -> None:
    spec = teacher_spec("cutoff")
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    calls = _count_forwards(program)
    engine = Engine(program)
    for x, y in batches_for(2):
        engine.train_step(x, y, 0)
    assert calls == {"a": 2, "t": 0}


def test_closed_edges_are_not_computed_this_epoch() -> None:
    spec = teacher_spec("positive_linear")
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    calls = _count_forwards(program)
    engine = Engine(program)
    x, y = batches_for(1)[0]
    engine.train_step(x, y, 0)  # weight 0 at epoch 0: the teacher is not even run
    assert calls["t"] == 0
    engine.train_step(x, y, 1)
    assert calls["t"] == 1


def test_gate_weights_matrix() -> None:
    program = ktg_dsl.compile_spec(make_spec(ALL_GATES), data_info=INFO)
    w0 = program.gate_weights(0)
    w3 = program.gate_weights(3)
    assert w0[0] == [1.0, 0.0, 1.0, 1.0] and w3[0] == [1.0, 1.0, 1.0, 1.0]
    assert w0[1][:3] == [pytest.approx(0.3), 1.0, 0.0] and w3[1][1] == 0.0
    assert w0[3] == [0.0] * 4  # the frozen teacher receives nothing


def test_losses_stay_on_device_and_metrics_read_once() -> None:
    program = ktg_dsl.compile_spec(make_spec(ALL_GATES), data_info=INFO)
    engine = Engine(program)
    x, y = batches_for(1)[0]
    losses = engine.train_step(x, y, 1)
    assert set(losses) == {"a", "b", "c"}
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in losses.values())
    stats = engine.end_epoch(1)
    assert set(stats) == {"a", "b", "c"}
    assert stats["a"]["train_loss"] == pytest.approx(float(losses["a"]), rel=1e-5)
    assert 0.0 <= stats["a"]["train_top1"] <= 100.0
    top1 = engine.evaluate(batches_for(2))
    assert set(top1) == {"a", "b", "c", "t"}


def test_labels_outside_the_classes_are_refused() -> None:
    program = ktg_dsl.compile_spec(make_spec(ALL_GATES), data_info=INFO)
    engine = Engine(program)
    x, _ = batches_for(1)[0]
    with pytest.raises(KtgRuntimeError, match=r"label 7 .* 5 classes"):
        engine.train_step(x, torch.full((16,), 7), 0)


def test_nan_loss_is_reported_with_node_and_epoch() -> None:
    spec = make_spec(
        [{"to": "a", "from": "labels"}, {"to": "b", "from": "labels"}, {"to": "b", "from": "a"}],
        nodes={
            "a": {"model": {"type": "small_cnn", "width": 4}},
            "b": {"model": {"type": "small_cnn", "width": 4}},
        },
    )
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    engine = Engine(program)
    x, y = batches_for(1)[0]
    with torch.no_grad():
        next(program.nodes["a"].model.parameters()).fill_(float("nan"))
    engine.train_step(x, y, 2)
    with pytest.raises(NonFiniteLossError) as exc:
        engine.end_epoch(2)
    # b learns from a, so its loss breaks too
    assert "nodes 'a' and 'b' " in str(exc.value) and "in epoch 3 of 4" in str(exc.value)
    assert exc.value.epoch == 2


def test_wrong_output_shape_is_a_clear_error() -> None:
    program = ktg_dsl.compile_spec(make_spec(ALL_GATES), data_info=INFO)
    program.nodes["b"].num_classes = 6  # as if the model's head were wrong
    engine = Engine(program)
    x, y = batches_for(1)[0]
    with pytest.raises(
        KtgRuntimeError,
        match=r"node 'b' returned \(16, 5\) for a batch of 16, "
        r"expected \(16, 6\)",
    ):
        engine.train_step(x, y, 0)


def test_bf16_runs_on_cpu() -> None:
    program = ktg_dsl.compile_spec(make_spec(ALL_GATES, precision="bf16"), data_info=INFO)
    assert program.precision == "bf16"
    engine = Engine(program)
    for x, y in batches_for(2):
        losses = engine.train_step(x, y, 1)
    assert all(torch.isfinite(v) for v in losses.values())
    engine.end_epoch(1)


def test_fp16_needs_cuda_on_cpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(KtgRuntimeError, match="fp16 needs a CUDA"):
        ktg_dsl.compile_spec(make_spec(ALL_GATES, precision="fp16", device="auto"), data_info=INFO)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_cuda_precisions_match_the_reference_roughly(precision: str) -> None:
    spec = make_spec(ALL_GATES, precision=precision, device="cuda")
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    engine = Engine(program)
    for epoch in range(2):
        for x, y in batches_for(2):
            losses = engine.train_step(x.cuda(), y.cuda(), epoch)
        engine.end_epoch(epoch)
    assert all(torch.isfinite(v) for v in losses.values())
    if precision == "fp16":
        assert all(n.scaler is not None for n in program.trainable())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_overflow_skips_only_that_node() -> None:
    spec = make_spec(ALL_GATES, precision="fp16", device="cuda")
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    engine = Engine(program)
    x, y = batches_for(1)[0]
    engine.train_step(x.cuda(), y.cuda(), 1)
    a, b = program.nodes["a"], program.nodes["b"]
    assert a.scaler is not None and b.scaler is not None
    a.scaler.update(new_scale=2.0**126)  # a's scaled loss overflows fp16 gradients
    before_a = [p.detach().clone() for p in a.model.parameters()]
    before_b = [p.detach().clone() for p in b.model.parameters()]
    engine.train_step(x.cuda(), y.cuda(), 1)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), before_a, strict=True))
    assert any(not torch.equal(p, q) for p, q in zip(b.model.parameters(), before_b, strict=True))


def test_a_broken_sender_reaches_only_its_own_receivers() -> None:
    spec = make_spec(
        [
            {"to": "a", "from": "labels"},
            {"to": "b", "from": "labels"},
            {"to": "c", "from": "labels"},
            {"to": "a", "from": "c"},
            {"to": "b", "from": "a"},
        ],
        nodes={n: {"model": {"type": "small_cnn", "width": 4}} for n in ("a", "b", "c")},
    )
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    engine = Engine(program)
    with torch.no_grad():
        for p in program.nodes["c"].model.parameters():
            p.fill_(float("nan"))
    x, y = batches_for(1)[0]
    losses = engine.train_step(x, y, 1)
    assert torch.isnan(losses["a"]) and torch.isnan(losses["c"])
    assert torch.isfinite(losses["b"]), "b reads only from a"


def test_per_step_gates_build_one_plan_per_epoch() -> None:
    spec = make_spec(ALL_GATES, gate_unit="step", epochs=2)
    program = ktg_dsl.compile_spec(spec, data_info=INFO, steps_per_epoch=5)
    engine = Engine(program)
    for epoch in range(2):
        for step, (x, y) in enumerate(batches_for(5)):
            engine.train_step(x, y, epoch, step)
    # the same edges are open in both epochs: one plan, the weights moving as data
    info = engine.plan_cache_info()
    assert (info.misses, info.hits, info.size) == (1, 9, 1)


@pytest.mark.slow
def test_plans_do_not_grow_with_epochs() -> None:
    """A linear gate changes its weight every epoch; the plan is cached by the set of open
    edges, so 200 epochs still hold one plan per distinct set (here: labels only at epoch 0,
    everything after)."""
    spec = teacher_spec("positive_linear").model_copy(
        update={"train": make_spec(ALL_GATES).train.model_copy(update={"epochs": 200})}
    )
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    engine = Engine(program)
    x, y = batches_for(1)[0]
    for epoch in range(200):
        engine.train_step(x[:2], y[:2], epoch)
    info = engine.plan_cache_info()
    assert (info.misses, info.size) == (2, 2) and info.size <= info.maxsize
    weights = engine.step_summary(100).weights
    assert weights[("a", "t")] == pytest.approx(100 / 199)


def test_mode_is_restored_whoever_changed_it() -> None:
    program = ktg_dsl.compile_spec(make_spec(ALL_GATES), data_info=INFO)
    engine = Engine(program)
    x, y = batches_for(1)[0]
    engine.train_step(x, y, 1)
    for node in program.nodes.values():
        node.model.train()  # a notebook habit
    teacher = program.nodes["t"].model
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    program.nodes["a"].model.eval()
    engine.train_step(x, y, 1)
    assert not teacher.training and program.nodes["a"].model.training
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
