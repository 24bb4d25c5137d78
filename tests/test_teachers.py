"""Teachers' weights from anywhere: a ktg checkpoint, a plain state_dict, a torchvision weights
file, a file that keeps its weights under a key or with a DataParallel prefix; and a plugin's
model as a node and as a frozen teacher with taps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision

import ktg_dsl
from ktg_dsl.check import check_data
from ktg_dsl.components.data import DatasetInfo
from ktg_dsl.engine import Engine
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.registry import load_plugins
from ktg_dsl.run import checkpoint as ckpt

INFO = DatasetInfo(10, (3, 32, 32))


def spec_with(teacher: dict[str, Any], edges: list[dict[str, Any]] | None = None) -> ktg_dsl.Spec:
    load_plugins(["ktg_test_plugin"])
    data = {
        "version": 1,
        "name": "teachers",
        "data": {"dataset": {"type": "synthetic", "num_classes": 10, "image_size": 32}},
        "train": {"epochs": 1, "precision": "fp32", "device": "cpu"},
        "nodes": {
            "s": {"model": {"type": "small_cnn", "width": 4}, "taps": {"f2": "block2"}},
            "t": {"frozen": True, **teacher},
        },
        "edges": edges or [{"to": "s", "from": "labels"}, {"to": "s", "from": "t"}],
    }
    report = check_data(data)
    assert report.ok and report.spec is not None, [i.format() for i in report.issues]
    return report.spec


def tv_weights(tmp_path: Path, transform: Any = None) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision ResNet-18's weights file, as torchvision (or a training script) saves
    one; ``transform`` wraps the state_dict the way other tools do."""
    torch.manual_seed(0)
    state = torchvision.models.resnet18(num_classes=10).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(transform(state) if transform else state, path)
    return path, state


def loaded(spec: ktg_dsl.Spec) -> torch.nn.Module:
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    node = program.nodes["t"]
    ckpt.load_node_weights(node, Path(spec.nodes["t"].checkpoint or ""))
    return node.model


def assert_holds(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_a_torchvision_weights_file(tmp_path: Path) -> None:
    path, state = tv_weights(tmp_path)
    model = {"type": "resnet18", "stem": "imagenet"}
    assert_holds(loaded(spec_with({"model": model, "checkpoint": str(path)})), state)


@pytest.mark.slow
def test_weights_under_a_key_and_with_a_prefix(tmp_path: Path) -> None:
    path, state = tv_weights(
        tmp_path, lambda s: {"epoch": 90, "model": {f"module.{k}": v for k, v in s.items()}}
    )
    teacher = {
        "model": {"type": "resnet18", "stem": "imagenet"},
        "checkpoint": str(path),
        "checkpoint_key": "model",
        "checkpoint_prefix": {"module.": ""},
    }
    assert_holds(loaded(spec_with(teacher)), state)
    del teacher["checkpoint_prefix"]
    with pytest.raises(KtgRuntimeError) as exc:
        loaded(spec_with(teacher))
    text = str(exc.value)
    assert "does not fit node 't'" in text
    assert "missing keys bn1.bias, bn1.num_batches_tracked" in text
    assert "unexpected keys module.bn1.bias" in text
    teacher["checkpoint_key"] = "state_dict"
    with pytest.raises(KtgRuntimeError, match=r"has no key 'state_dict'.*'epoch', 'model'"):
        loaded(spec_with(teacher))


def test_the_cifar_stem_does_not_take_imagenet_weights(tmp_path: Path) -> None:
    path, _ = tv_weights(tmp_path)
    with pytest.raises(KtgRuntimeError, match=r"shape mismatch at conv1.weight .*\(64, 3, 7, 7\)"):
        loaded(spec_with({"model": "resnet18", "checkpoint": str(path)}))


def test_a_plugin_model_as_a_node_and_as_a_teacher_with_taps(tmp_path: Path) -> None:
    load_plugins(["ktg_test_plugin"])
    from ktg_dsl.registry import MODELS

    torch.manual_seed(3)
    teacher = MODELS.get("staged_net").build({}, num_classes=10, in_channels=3)
    path = tmp_path / "staged.pt"
    torch.save(teacher.state_dict(), path)
    spec = spec_with(
        {"model": "staged_net", "checkpoint": str(path), "taps": {"s1": "stages.1"}},
        [
            {"to": "s", "from": "labels"},
            {"to": "s", "from": "t"},
            {"to": "s.f2", "from": "t.s1", "loss": "hint"},
        ],
    )
    program = ktg_dsl.compile_spec(spec, data_info=INFO)
    ckpt.load_node_weights(program.nodes["t"], path)
    engine = Engine(program)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    losses = engine.train_step(x, y, 0)
    assert torch.isfinite(losses["s"])
    assert engine.step_summary(0).taps == {"s": ["f2"], "t": ["s1"]}
    assert_holds(program.nodes["t"].model, teacher.state_dict())  # a teacher never moves
    hint = next(iter(program.nodes["s"].adapters.values()))
    assert hint[0].weight.shape == (16, 8, 1, 1)  # s's block2 (8 channels) -> t's stage (16)
