"""Each extension point takes a new component through the registry (or a constructor argument)
without any change to the engine: a per-sample gate, a loss with and without a group kernel, a
second engine behind the recipe."""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import ktg_dsl
from ktg_dsl.check import load_spec
from ktg_dsl.components.data import DatasetInfo
from ktg_dsl.components.gates import Gate
from ktg_dsl.components.losses import EdgeLoss
from ktg_dsl.engine import Engine, NodeOutput, Program, TrainingEngine
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.registry import GATES, LOSSES
from ktg_dsl.run.recipe import Recipe, default_engine

from .conftest import small_spec, write_spec

INFO = DatasetInfo(4, (3, 8, 8))


def spec_with(edges: list[dict[str, Any]]) -> ktg_dsl.Spec:
    return ktg_dsl.check.check_data(
        {
            "version": 1,
            "name": "ext",
            "seed": 1,
            "data": {"dataset": {"type": "synthetic", "num_classes": 4, "image_size": 8}},
            "train": {"epochs": 2, "precision": "fp32", "device": "cpu"},
            "defaults": {"optimizer": {"type": "sgd", "lr": 0.1}},
            "nodes": {
                "a": {"model": {"type": "small_cnn", "width": 4}},
                "b": {"model": {"type": "small_cnn", "width": 4}},
            },
            "edges": [{"to": "a", "from": "labels"}, {"to": "b", "from": "labels"}, *edges],
        }
    ).spec  # type: ignore[return-value]


def batch(seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 4, (8,), generator=g)


def kl(receiver: Tensor, sender: Tensor) -> Tensor:
    return (F.softmax(sender, -1) * (F.log_softmax(sender, -1) - F.log_softmax(receiver, -1))).sum(
        -1
    )


def one_step_by_hand(program: Program, mask_fn: Any, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """a learns from the labels and from b (KL, masked per sample by mask_fn(b's logits, y));
    b from the labels: one SGD step of each, written out plainly."""
    a, b = (copy.deepcopy(program.nodes[n].model).train() for n in ("a", "b"))
    za, zb = a(x), b(x)
    loss_a = F.cross_entropy(za, y) + (kl(za, zb.detach()) * mask_fn(zb.detach(), y)).mean()
    loss_b = F.cross_entropy(zb, y)
    for model, loss in ((a, loss_a), (b, loss_b)):
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    return {"a": loss_a.detach(), "b": loss_b.detach(), "models": (a, b)}  # type: ignore[dict-item]


def assert_models_equal(program: Program, models: Iterable[torch.nn.Module]) -> None:
    for name, ref in zip(("a", "b"), models, strict=True):
        for (k, v), w in zip(
            program.nodes[name].model.state_dict().items(),
            ref.state_dict().values(),
            strict=True,
        ):
            torch.testing.assert_close(v, w, rtol=1e-5, atol=1e-6, msg=f"{name}.{k}")


@dataclass(frozen=True)
class Confident(Gate):
    """A per-sample gate the engine has never seen: 1 where the sender's top probability is
    above ``level``."""

    level: float = 0.3

    def shape(self, p: float) -> float:
        return 1.0

    def sample_mask(self, sender_logits: Tensor, labels: Tensor) -> Tensor | None:
        return (F.softmax(sender_logits, -1).amax(-1) > self.level).float()


def confident(level: float = 0.3) -> Gate:
    """1 where the sender is confident."""
    return Confident("confident", "parametric", per_sample=True, level=level)


def test_a_new_per_sample_gate_needs_no_engine_change() -> None:
    x, y = batch()
    with GATES.registered("confident", confident):

        def program_at(level: float) -> Program:
            gate = {"type": "confident", "level": level}
            spec = spec_with([{"to": "a", "from": "b", "gate": gate}])
            return ktg_dsl.compile_spec(spec, data_info=INFO)

        # a level that masks about half the batch (b's train-mode confidence on it)
        b = copy.deepcopy(program_at(0.3).nodes["b"].model).train()
        level = float(F.softmax(b(x).detach(), -1).amax(-1).median())
        program = program_at(level)
        gate = Confident("confident", "parametric", per_sample=True, level=level)
        mask = gate.sample_mask(copy.deepcopy(program.nodes["b"].model).train()(x), y)
        assert mask is not None and 0 < mask.sum() < 8, mask
        expected = one_step_by_hand(program, gate.sample_mask, x, y)
        losses = Engine(program).train_step(x, y, 0)
    torch.testing.assert_close(losses["a"], expected["a"])
    torch.testing.assert_close(losses["b"], expected["b"])
    assert_models_equal(program, expected["models"])  # type: ignore[arg-type]
    assert "confident" not in GATES


@dataclass(frozen=True)
class CountingKL(EdgeLoss):
    """KL with a group kernel that counts its calls (and the edges of each)."""

    calls: list[int]

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        return kl(logits, target.detach())

    def group_key(self) -> Hashable:
        return "counting_kl"

    def group_per_sample(
        self,
        receivers: Tensor,
        senders: Tensor | None,
        labels: Tensor,
        pair_r: Tensor,
        pair_s: Tensor | None,
    ) -> Tensor:
        assert senders is not None and pair_s is not None
        self.calls.append(len(pair_r))
        return kl(receivers.index_select(0, pair_r), senders.index_select(0, pair_s))


@dataclass(frozen=True)
class PlainKL(EdgeLoss):
    """The same loss without a kernel: computed edge by edge."""

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        return kl(logits, target.detach())


def test_losses_with_a_group_kernel_are_computed_together() -> None:
    calls: list[int] = []

    def counting_kl() -> EdgeLoss:
        """KL, batched."""
        return CountingKL("counting_kl", calls=calls)

    def plain_kl() -> EdgeLoss:
        """KL, edge by edge."""
        return PlainKL("plain_kl")

    edges = [{"to": "a", "from": "b"}, {"to": "b", "from": "a"}]
    x, y = batch(3)
    results = {}
    with (
        LOSSES.registered("counting_kl", counting_kl, target="logits"),
        LOSSES.registered("plain_kl", plain_kl, target="logits"),
    ):
        for loss in ("counting_kl", "plain_kl"):
            spec = spec_with([{**e, "loss": loss} for e in edges])
            engine = Engine(ktg_dsl.compile_spec(spec, data_info=INFO))
            results[loss] = engine.train_step(x, y, 0)
            summary = engine.step_summary(0)
            kinds = {kind: pairs for kind, pairs in summary.groups}
            if loss == "counting_kl":
                assert kinds["counting_kl"] == [("a", "b"), ("b", "a")]  # one group
            else:
                assert [k for k, _ in summary.groups].count("plain_kl") == 2  # one each
    assert calls == [2], "one call of the kernel for both edges"
    for node in ("a", "b"):
        torch.testing.assert_close(results["counting_kl"][node], results["plain_kl"][node])


class CountingEngine:
    """A second engine behind the recipe: the single-process one, wrapped, counting calls."""

    def __init__(self, program: Program) -> None:
        self.inner = Engine(program)
        self.program = program
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if callable(attr):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                return attr(*args, **kwargs)

            return counted
        return attr


def test_the_recipe_runs_any_engine(tmp_path: Path) -> None:
    data = small_spec(
        "swap",
        {"a": {"model": {"type": "small_cnn", "width": 4}}},
        [{"to": "a", "from": "labels"}],
        epochs=2,
        classes=3,
    )
    spec = load_spec(write_spec(tmp_path, data))
    made: list[CountingEngine] = []

    def engine(program: Program) -> TrainingEngine:
        made.append(CountingEngine(program))
        return made[0]  # type: ignore[return-value]

    recipe = Recipe(spec, tmp_path / "run", progress=False, tensorboard=False, engine=engine)
    recipe.setup()
    result = recipe.train()
    recipe.cleanup()
    assert result.epochs_done == 2
    calls = made[0].calls
    assert calls["train_step"] == 2 * 4 and calls["end_epoch"] == 2
    assert calls["evaluate_metrics"] == 2 and calls["state_dict"] == 2  # last.pt per epoch


def test_the_recipe_refuses_an_engine_it_would_not_run(tmp_path: Path) -> None:
    """On several processes the DistributedEngine runs (it exchanges between ranks): an
    engine= given there was silently replaced; now it is refused by name."""
    nodes = {"a": {"model": {"type": "small_cnn", "width": 4}}}
    data = small_spec("one", nodes, [{"to": "a", "from": "labels"}])
    spec = load_spec(write_spec(tmp_path, data))
    recipe = Recipe(spec, tmp_path / "run", engine=Engine, progress=False)
    recipe.cluster = object()  # type: ignore[assignment]  # any mesh: the refusal comes first
    with pytest.raises(KtgRuntimeError, match=r"Recipe\(engine=\.\.\.\) runs on one process"):
        recipe._engine_maker()
    assert Recipe(spec, tmp_path / "run2", engine=Engine)._engine_maker() is Engine
    # no engine=: the one the program needs (the self-supervised engine for such a program)
    assert Recipe(spec, tmp_path / "run2")._engine_maker() is default_engine


def test_a_node_forward_is_a_node_output() -> None:
    program = ktg_dsl.compile_spec(spec_with([]), data_info=INFO)
    out = Engine(program).forward_node(program.nodes["a"], batch()[0], train=False)
    assert isinstance(out, NodeOutput) and out.logits.shape == (8, 4) and out.features == {}


def test_registered_components_leave_with_their_block() -> None:
    with GATES.registered("tmp_gate", confident) as comp:
        assert comp.name == "tmp_gate" and "tmp_gate" in GATES
    assert "tmp_gate" not in GATES
    GATES.register("tmp_gate2")(confident)
    assert GATES.unregister("tmp_gate2").factory is confident
    with pytest.raises(KeyError):
        GATES.unregister("tmp_gate2")
