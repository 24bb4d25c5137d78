"""The spec schema and component checks: every problem reported at once, in place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

import ktg_dsl
from ktg_dsl import SpecError
from ktg_dsl.check import parse_data
from ktg_dsl.graph import spec_edges
from ktg_dsl.spec.overrides import parse_override, parse_path, set_path

from .conftest import base_spec


def errors_of(data: dict[str, Any], overrides: tuple[str, ...] = ()) -> list[str]:
    spec, issues = parse_data(data, overrides=overrides)
    if spec is not None and not issues:
        issues = ktg_dsl.validate_spec(spec)
    return [i.format() for i in issues if i.is_error]


def test_base_spec_is_valid() -> None:
    assert errors_of(base_spec()) == []


def test_load_spec_returns_a_frozen_spec(spec_file: Callable[..., Path]) -> None:
    spec = ktg_dsl.load_spec(spec_file(base_spec()))
    assert spec.node_names == ["a", "b"]
    with pytest.raises(ValidationError):
        spec.seed = 3  # type: ignore[misc]


def test_every_problem_is_reported_at_once(spec_file: Callable[..., Path]) -> None:
    data = base_spec()
    data["train"] = {"epochs": 0, "precison": "bf16"}
    data["data"] = {"dataset": "digitz", "batch_size": -1}
    data["nodes"]["a"]["model"] = "resnet23"
    data["defaults"] = {"loss": {"type": "kl", "temperature": 0}}
    with pytest.raises(SpecError) as exc:
        ktg_dsl.load_spec(spec_file(data))
    text = "\n".join(i.format() for i in exc.value.issues)
    for expected in [
        "train.epochs: must be >= 1, got 0",
        "train.precison: unknown key 'precison' (did you mean 'precision'?)",
        "data.dataset: unknown dataset 'digitz' (did you mean 'digits'?)",
        "data.batch_size: must be >= 1, got -1",
        "nodes.a.model: unknown model 'resnet23' (did you mean 'resnet32'?)",
        "defaults.loss.temperature: must be > 0.0, got 0",
    ]:
        assert expected in text, text
    assert all(i.line is not None for i in exc.value.issues)


def test_messages_carry_file_line_and_column(spec_file: Callable[..., Path]) -> None:
    path = spec_file(
        "version: 1\nname: x\ndata: {dataset: digits}\ntrain:\n  epochs: three\n"
        "nodes: {a: {model: small_cnn}}\nedges: [{to: a, from: labels}]\n"
    )
    with pytest.raises(SpecError) as exc:
        ktg_dsl.load_spec(path)
    assert [i.format() for i in exc.value.issues] == [
        f"{path}:5:3  train.epochs: expected an integer, got 'three'"
    ]


def test_missing_required_keys() -> None:
    errs = errors_of({"version": 1, "name": "x"})
    assert any("missing required key 'data'" in e for e in errs)
    assert any("missing required key 'nodes'" in e for e in errs)


def test_component_mapping_without_type() -> None:
    errs = errors_of(base_spec(defaults={"optimizer": {"lr": 0.1}}))
    assert any(
        "defaults.optimizer: a optimizer written as a mapping needs 'type" in e
        or "needs 'type: <optimizer name>'" in e
        for e in errs
    ), errs


def test_unknown_component_argument_gets_a_hint() -> None:
    errs = errors_of(base_spec(defaults={"optimizer": {"type": "sgd", "momentun": 0.9}}))
    assert any(
        "defaults.optimizer.momentun: unknown key 'momentun' (did you mean 'momentum'?)" in e
        for e in errs
    ), errs


def test_cross_argument_check_of_a_component() -> None:
    errs = errors_of(
        base_spec(
            nodes={
                "a": {"model": {"type": "cifar_resnet", "depth": 33}},
                "b": {"model": "small_cnn"},
            }
        )
    )
    assert any("depth is 6n+2" in e for e in errs), errs


def test_yaml_scientific_floats_are_numbers() -> None:
    # PyYAML reads 5e-4 (no dot) as a string; pydantic's lax mode still takes it as a number.
    data = yaml.safe_load("optimizer: {type: sgd, lr: 0.1, weight_decay: 5e-4}")
    assert errors_of(base_spec(defaults=data)) == []


def test_gate_matrix_equals_edge_list() -> None:
    matrix = base_spec(gate_matrix=[["through", "positive_linear"], ["cutoff", "through"]])
    del matrix["edges"]
    listed = base_spec(
        edges=[
            {"to": "a", "from": "labels"},
            {"to": "a", "from": "b", "gate": "positive_linear"},
            {"to": "b", "from": "labels"},
            {"to": "b", "from": "a", "gate": "cutoff"},
        ]
    )
    s1, _ = parse_data(matrix)
    s2, _ = parse_data(listed)
    assert s1 is not None and s2 is not None
    e1 = {(e.receiver, e.sender, str(e.gate), str(e.loss)) for e in spec_edges(s1)[0]}
    e2 = {(e.receiver, e.sender, str(e.gate), str(e.loss)) for e in spec_edges(s2)[0]}
    assert e1 == e2


def test_losses_resolve_edge_then_node_then_defaults() -> None:
    data = base_spec(defaults={"loss": {"type": "kl", "temperature": 2}})
    data["nodes"]["b"]["loss"] = {"type": "kl", "temperature": 3}
    data["edges"][2]["loss"] = {"type": "kl", "temperature": 5}  # b -> a
    spec, _ = parse_data(data)
    assert spec is not None
    losses = {(e.receiver, e.sender): e.loss.args.get("temperature") for e in spec_edges(spec)[0]}
    assert losses[("a", "b")] == 5 and losses[("b", "a")] == 3
    assert losses[("a", "labels")] is None


def test_overrides_get_the_same_messages() -> None:
    errs = errors_of(base_spec(), overrides=("train.epochs=0", "train.nope=1"))
    assert any(e.startswith("--set train.epochs=0  train.epochs: must be >= 1") for e in errs)
    assert any("unknown key 'nope'" in e for e in errs)
    assert errors_of(base_spec(), overrides=("defaults.loss.temperature=4",)) == []


def test_override_parsing() -> None:
    assert parse_path("edges[0].gate") == ("edges", 0, "gate")
    assert parse_path("gate_matrix.1.2") == ("gate_matrix", 1, 2)
    assert parse_override("train.epochs=3") == (("train", "epochs"), 3)
    assert parse_override("data.download=true") == (("data", "download"), True)
    assert set_path({"loss": "kl"}, ("loss", "temperature"), 4) == {
        "loss": {"type": "kl", "temperature": 4}
    }
    with pytest.raises(ValueError):
        parse_override("no-equals-sign")


def test_resolved_spec_round_trips() -> None:
    from ktg_dsl.spec.components import resolve_refs

    spec, _ = parse_data(base_spec())
    assert spec is not None
    full = resolve_refs(spec)
    assert full.defaults.optimizer.args["nesterov"] is True
    again, issues = parse_data(full.to_data())
    assert again is not None and not issues
    assert again.model_dump() == full.model_dump()


def test_json_spec(spec_file: Callable[..., Path]) -> None:
    import json

    spec = ktg_dsl.load_spec(spec_file(json.dumps(base_spec(), indent=2), "s.json"))
    assert spec.node_names == ["a", "b"]


def test_empty_keys_in_override_paths_are_errors() -> None:
    for bad in ("a..b", ".a", "a.", "train..epochs", "a[x]"):
        with pytest.raises(ValueError):
            parse_path(bad)
    assert parse_path(" train.epochs ") == ("train", "epochs")
    assert parse_path("gate_matrix[-1][0]") == ("gate_matrix", -1, 0)


def test_problems_an_override_created_are_reported_against_it() -> None:
    errs = errors_of(
        base_spec(),
        overrides=("nodes.a.model={type: wrn, depth: 28, width: 1000}", "nodes.c.model=small_cnn"),
    )
    assert any(
        e.startswith(
            "--set nodes.a.model={type: wrn, depth: 28, width: 1000}  "
            "nodes.a.model.width: must be <= 32"
        )
        for e in errs
    ), errs
    assert any(
        e.startswith("--set nodes.c.model=small_cnn  nodes.c: 'c' receives no edge") for e in errs
    ), errs


def test_non_finite_numbers_are_refused() -> None:
    errs = errors_of(base_spec(defaults={"optimizer": {"type": "sgd", "lr": float("inf")}}))
    assert any("defaults.optimizer.lr: must be a finite number, got inf" in e for e in errs)
    errs = errors_of(base_spec(train={"epochs": 3, "grad_clip": float("nan")}))
    assert any("train.grad_clip: must be a finite number, got nan" in e for e in errs), errs
