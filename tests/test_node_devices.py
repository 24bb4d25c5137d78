"""``nodes.<name>.device`` in one process: each node's model, optimizer and adapters live on its
own device, its input goes there and its logits come back to ``train.device``, where the losses
are computed (and the gradient flows back). On a machine with one GPU, a node on the GPU and
the others on the CPU train as all of them on the CPU do (to the GPU's float tolerance); on two
GPUs, two nodes on two GPUs. Without CUDA these tests are skipped (marked ``gpu``)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ktg_dsl
from ktg_dsl.check import parse_data
from ktg_dsl.components.data import DatasetInfo
from ktg_dsl.engine import Engine

INFO = DatasetInfo(5, (3, 8, 8))
TAPS = {"f3": "block3"}


def make_spec(devices: dict[str, str], train_device: str) -> ktg_dsl.Spec:
    nodes = {
        name: {"model": {"type": "small_cnn", "width": 4}, "taps": TAPS}
        | ({"device": devices[name]} if name in devices else {})
        for name in ("a", "b", "c")
    }
    data: dict[str, Any] = {
        "version": 1,
        "name": "devices",
        "seed": 3,
        "data": {"dataset": {"type": "synthetic", "num_classes": 5, "image_size": 8}},
        "train": {"epochs": 2, "precision": "fp32", "device": train_device},
        "defaults": {"optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9}},
        "nodes": nodes,
        "edges": [
            {"to": "a", "from": "labels"},
            {"to": "a", "from": "b", "gate": "correct"},
            {"to": "b", "from": "labels"},
            {"to": "b", "from": "c"},
            {"to": "c", "from": "labels"},
            {"to": "c", "from": "a", "gate": "positive_linear"},
            {"to": "c.f3", "from": "a.f3", "loss": "hint"},
        ],
    }
    spec, issues = parse_data(data)
    assert spec is not None and not [i for i in issues if i.is_error], issues
    return spec


def train(devices: dict[str, str], train_device: str) -> dict[str, dict[str, torch.Tensor]]:
    program = ktg_dsl.compile_spec(make_spec(devices, train_device), data_info=INFO)
    for name, device in devices.items():
        node = program.nodes[name]
        assert node.device == torch.device(device)
        assert all(p.device == torch.device(device) for p in node.model.parameters())
    engine = Engine(program)
    g = torch.Generator().manual_seed(0)
    for epoch in range(2):
        for _ in range(3):
            x, y = torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 5, (16,), generator=g)
            engine.train_step(x, y, epoch)
        engine.end_epoch(epoch)
    out = {}
    for name, node in program.nodes.items():
        state = {k: v.detach().cpu() for k, v in node.model.state_dict().items()}
        state |= {f"adapter.{k}": v.detach().cpu() for k, v in node.adapters.state_dict().items()}
        out[name] = state
    return out


def assert_close_states(one: dict, other: dict) -> None:
    for name in one:
        for key, value in one[name].items():
            torch.testing.assert_close(value, other[name][key], rtol=1e-3, atol=1e-4)


def test_nodes_placed_on_the_cpu_by_name_train_as_the_default() -> None:
    """The placement path (every node's device written) on any machine: the same run."""
    assert_close_states(train({}, "cpu"), train({"a": "cpu", "b": "cpu", "c": "cpu"}, "cpu"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_node_on_the_gpu_trains_as_on_the_cpu() -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    reference = train({}, "cpu")
    # the losses on the GPU; b and c (and c's hint adapter) on the CPU
    mixed = train({"a": "cuda:0", "b": "cpu", "c": "cpu"}, "cuda")
    assert_close_states(reference, mixed)
    # the losses on the CPU; a on the GPU
    assert_close_states(reference, train({"a": "cuda:0"}, "cpu"))


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_nodes_on_two_gpus_train_as_on_one() -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    one = train({}, "cuda:0")
    two = train({"a": "cuda:0", "b": "cuda:1", "c": "cuda:1"}, "cuda:0")
    assert_close_states(one, two)
