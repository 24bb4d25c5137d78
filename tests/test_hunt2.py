"""Bad inputs found by the second bad-input hunt: teachers' checkpoint files (a FIFO called
missing, an empty path called a folder, NaN weights blamed on the learning rate, weights
nested under a key), checkpoint keys without a checkpoint, and a spec that writes its graph
both as edges and as a gate matrix."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from .conftest import small_spec, write_spec

SPEC = small_spec(
    "hunt2",
    {
        "a": {"model": {"type": "small_cnn", "width": 4}},
        "t": {"model": {"type": "small_cnn", "width": 4}, "frozen": True},
    },
    [{"to": "a", "from": "labels"}, {"to": "a", "from": "t"}],
    train_size=32,
)


def spec(**teacher: Any) -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    data["nodes"]["t"].update(teacher)
    return data


def weights() -> dict[str, torch.Tensor]:
    import ktg_dsl.components.models  # noqa: F401  (registers the models)
    from ktg_dsl.registry import MODELS

    model = MODELS.get("small_cnn").build({"width": 4}, num_classes=4, in_channels=3)
    return dict(model.state_dict())


def test_a_checkpoint_that_is_a_fifo_is_not_called_missing(tmp_path: Path, cli: Any) -> None:
    """It was 'checkpoint of node 't' does not exist' (with 'train the teacher first')."""
    fifo = tmp_path / "t.pt"
    os.mkfifo(fifo)
    code, _, err = cli("validate", write_spec(tmp_path, spec(checkpoint=str(fifo))))
    assert code == 1, err
    assert f"nodes.t.checkpoint: checkpoint of node 't' is not a regular file: {fifo}" in err
    assert "does not exist" not in err


@pytest.mark.parametrize("path", ["", "  "])
def test_an_empty_checkpoint_is_not_called_a_folder(tmp_path: Path, cli: Any, path: str) -> None:
    """'' was read as '.': 'checkpoint of node 't' is a folder, not a checkpoint file: .'."""
    code, _, err = cli("validate", write_spec(tmp_path, spec(checkpoint=path)))
    assert code == 1, err
    assert "nodes.t.checkpoint: checkpoint of node 't' is empty" in err
    assert "is a folder" not in err


def test_nan_weights_are_refused_by_deep_validate_and_train(tmp_path: Path, cli: Any) -> None:
    """validate --deep said valid; train stopped with 'the loss of node 'a' became NaN ...
    lower the learning rate', which was not the cause."""
    state = weights()
    state["block1.0.weight"] = torch.full_like(state["block1.0.weight"], float("nan"))
    file = tmp_path / "t.pt"
    torch.save(state, file)
    path = write_spec(tmp_path, spec(checkpoint=str(file)))
    expected = f"checkpoint {file} holds NaN or infinite values in block1.0.weight"
    code, _, err = cli("validate", "--deep", path)
    assert code == 1 and expected in err, err
    code, _, err = cli("train", path, "--run-dir", str(tmp_path / "run"))
    assert code == 1 and expected in err, err
    assert "lower the learning rate" not in err


def test_weights_under_a_key_suggest_checkpoint_key(tmp_path: Path, cli: Any) -> None:
    file = tmp_path / "t.pt"
    torch.save({"epoch": 3, "model": weights()}, file)
    code, _, err = cli("validate", "--deep", write_spec(tmp_path, spec(checkpoint=str(file))))
    assert code == 1, err
    assert "its weights may be under 'model': add checkpoint_key: model" in err
    torch.save({"epoch": 3, "model": weights()}, file)
    data = spec(checkpoint=str(file), checkpoint_key="model")
    code, _, err = cli("validate", "--deep", write_spec(tmp_path, data))
    assert code == 0, err


def test_checkpoint_keys_without_a_checkpoint_are_a_warning(tmp_path: Path, cli: Any) -> None:
    """They were ignored without a word."""
    data = spec(checkpoint_key="model", checkpoint_prefix={"module.": ""})
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 0, err
    for key in ("checkpoint_key", "checkpoint_prefix"):
        assert f"nodes.t.{key}: warning: '{key}' does nothing: node 't' has no 'checkpoint'" in err


def test_edges_and_a_gate_matrix_are_both_read(tmp_path: Path, cli: Any) -> None:
    """With both forms, the gate matrix was dropped: besides the conflict, 'b receives no edge
    that can ever open' (its labels edge was in the matrix). Both are read; the conflict is the
    one message (an edge written in both is not a second error)."""
    data = copy.deepcopy(SPEC)
    data["nodes"]["t"] = {"model": {"type": "small_cnn", "width": 4}}
    data["gate_matrix"] = [["through", "through"], ["cutoff", "through"]]
    data["edges"] = [{"to": "a", "from": "t"}]
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1, err
    assert "gate_matrix: both 'edges' and 'gate_matrix' are given" in err
    assert "never trains" not in err and "duplicate edge" not in err
    assert "invalid (1 error, 0 warnings)" in err


def test_dkd_of_a_confident_model_is_finite() -> None:
    """A logit gap past ~100 T (T=1: 110; T=0.1: 30) made the other classes' probability 0 in
    fp32, and its log made DKD NaN: training stopped, blaming the learning rate."""
    from ktg_dsl.components.losses import dkd

    labels = torch.arange(4) % 3
    sure = torch.nn.functional.one_hot(labels, 3).float() * 200.0
    receiver = (sure + torch.randn(4, 3)).requires_grad_()
    for t in (4.0, 1.0, 0.1):
        loss = dkd(temperature=t).per_sample(receiver, sure, labels).mean()
        loss.backward()
        assert torch.isfinite(loss) and receiver.grad is not None
        assert torch.isfinite(receiver.grad).all()


@pytest.mark.parametrize("loss", ["kl", "dkd", "dist"])
def test_a_temperature_too_small_for_float32_is_refused(
    tmp_path: Path, cli: Any, loss: str
) -> None:
    """temperature: 1e-30 was valid; T^2 is 0 in float32 (the loss silently 0), and 1e-40
    made z / T infinite (NaN loss in training)."""
    data = spec()
    data["edges"][1]["loss"] = {"type": loss, "temperature": 1e-30}
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1, err
    assert "edges[1].loss: temperature 1e-30 is too small: T^2 = 1.0e-60 vanishes" in err
    data["edges"][1]["loss"]["temperature"] = 1e-3
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 0, err
