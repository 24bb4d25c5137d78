"""The fp16 path (autocast fp16, one GradScaler per node) run on the CPU, so that the default
suite exercises it: specs refuse fp16 without CUDA, but the engine's code is the same on any
device, and this torch has CPU fp16 autocast, ``torch.amp.GradScaler("cpu")`` and fused SGD for
fp32 master weights. The CPU twins of test_engine.py's CUDA-only fp16 tests."""

from __future__ import annotations

import pytest
import torch

from ktg_dsl.compiler import Program, Target, compile_program
from ktg_dsl.engine import Engine
from ktg_dsl.graph import link

from .test_engine import ALL_GATES, INFO, batches_for, make_spec


def fp16_program(fused: str) -> Program:
    spec = make_spec(ALL_GATES, fused_optimizer=fused)
    target = Target(torch.device("cpu"), "fp16", False)
    return compile_program(spec, link(spec), target, data_info=INFO)


@pytest.mark.parametrize("fused", ["on", "off"])
def test_an_fp16_step_on_the_cpu_is_finite_with_a_scaler_per_node(fused: str) -> None:
    program = fp16_program(fused)
    trained = program.trainable()
    assert [n.name for n in trained] == ["a", "b", "c"]
    assert all(isinstance(n.scaler, torch.amp.GradScaler) for n in trained)
    assert len({id(n.scaler) for n in trained}) == 3, "one scaler per node"
    assert program.nodes["t"].scaler is None, "a frozen teacher has none"
    if fused == "on":
        assert all(n.optimizer.defaults.get("fused") for n in trained)
    engine = Engine(program)
    before = {n.name: [p.detach().clone() for p in n.model.parameters()] for n in trained}
    seen_half = []
    hook = trained[0].model.register_forward_hook(lambda m, i, o: seen_half.append(o.dtype))
    for x, y in batches_for(2):
        losses = engine.train_step(x, y, 1)
    hook.remove()
    assert seen_half == [torch.float16] * 2, "the forward ran under fp16 autocast"
    assert all(torch.isfinite(v) for v in losses.values())
    for node in trained:
        assert node.scaler.get_scale() == 2.0**16, "no overflow: the scale stays"
        assert all(p.dtype == torch.float32 for p in node.model.parameters())
        changed = [
            not torch.equal(p, q)
            for p, q in zip(node.model.parameters(), before[node.name], strict=True)
        ]
        assert any(changed), f"{node.name} stepped"
    engine.end_epoch(1)


def test_an_fp16_overflow_on_the_cpu_skips_only_that_node() -> None:
    program = fp16_program("on")
    engine = Engine(program)
    x, y = batches_for(1)[0]
    engine.train_step(x, y, 1)
    a, b, c = (program.nodes[n] for n in "abc")
    assert a.scaler is not None and b.scaler is not None and c.scaler is not None
    a.scaler.update(new_scale=2.0**126)  # a's scaled loss overflows its fp16 gradients
    before = {n.name: [p.detach().clone() for p in n.model.parameters()] for n in (a, b, c)}
    momentum = [s["momentum_buffer"].clone() for s in a.optimizer.state.values()]
    engine.train_step(x, y, 1)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), before["a"], strict=True))
    after = [s["momentum_buffer"] for s in a.optimizer.state.values()]
    assert all(torch.equal(m, n) for m, n in zip(after, momentum, strict=True)), "no step at all"
    for node in (b, c):
        params = zip(node.model.parameters(), before[node.name], strict=True)
        assert any(not torch.equal(p, q) for p, q in params), f"{node.name} stepped"
    assert a.scaler.get_scale() == 2.0**125, "a's scaler backed off"
    assert b.scaler.get_scale() == c.scaler.get_scale() == 2.0**16, "the others did not"
    losses = engine.train_step(x, y, 1)  # and training goes on
    assert all(torch.isfinite(v) for v in losses.values())
