"""Bad inputs around taps and feature edges found by the bad-input hunt: tap names reported at
their key with what a tap name takes, an edge end with an empty tap name, search model choices
that lack a node's tapped module (or give it another shape), and search edges naming taps."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from .conftest import small_spec, write_spec

SPEC = small_spec(
    "feat",
    {
        "a": {"model": {"type": "small_cnn", "width": 4}, "taps": {"f2": "block2"}},
        "b": {"model": {"type": "small_cnn", "width": 8}, "taps": {"f2": "block2"}},
    },
    [
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "b", "from": "a"},
        {"to": "b.f2", "from": "a.f2", "loss": "hint"},
    ],
)


def spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    data.update(changes)
    return data


@pytest.mark.parametrize("tap", ["f-2", "3x", "a.b", ""])
def test_a_bad_tap_name_is_reported_at_its_key_with_what_a_tap_name_takes(
    tmp_path: Path, cli: Any, tap: str
) -> None:
    """It was keyed 'nodes.a.taps.f-2.[key]' (pydantic's mark) and hinted that '-' and '.'
    and a leading digit were fine."""
    data = spec()
    data["nodes"]["a"]["taps"][tap] = "block1"
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1, err
    assert f"nodes.a.taps.{tap}: '{tap}' is not allowed here (a tap name: up to 64 ASCII" in err
    assert "[key]" not in err and "'-' and '.'" not in err


def test_a_bad_module_path_gets_the_module_path_hint(tmp_path: Path, cli: Any) -> None:
    code, _, err = cli("validate", write_spec(tmp_path, spec()), "--set", "nodes.a.taps.f2=layer-3")
    assert code == 1 and "(a module path: names of letters, digits and '_' joined by '.'" in err


@pytest.mark.parametrize(("key", "end", "node"), [("to", "b.", "b"), ("from", "a.", "a")])
def test_an_edge_end_with_an_empty_tap_name_is_an_error(
    tmp_path: Path, cli: Any, key: str, end: str, node: str
) -> None:
    """'b.' was read as b's logits: the edge a -> b. trained as a -> b."""
    data = spec()
    data["edges"][2][key] = end
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1, err
    assert f"edges[2].{key}: '{end}' names no tap after the '.'" in err
    assert f"(write '{node}' for its logits, or '{node}.<tap>'" in err


def _searched(models: list[Any]) -> dict[str, Any]:
    return spec(search={"trials": 2, "models": {"b": models}})


def test_deep_checks_the_taps_of_every_model_choice(tmp_path: Path, cli: Any) -> None:
    """resnet20 has no block2: every trial that sampled it failed, while validate --deep
    said the spec was valid."""
    path = write_spec(tmp_path, _searched([{"type": "small_cnn", "width": 8}, "resnet20"]))
    code, _, err = cli("validate", path, "--deep")
    assert code == 1, err
    assert (
        "search.models.b[1]: with the model choice 'resnet20', nodes.b.taps.f2: 'block2' is not "
        "a module of the model" in err
    )
    assert "search.models.b[0]" not in err


def test_deep_checks_feature_edges_with_every_model_choice(tmp_path: Path, cli: Any) -> None:
    """wrn_16_1's block2 is 4x4 where small_cnn's is 8x8: a hint edge cannot join them."""
    path = write_spec(tmp_path, _searched([{"type": "small_cnn", "width": 8}, "wrn_16_1"]))
    code, _, err = cli("validate", path, "--deep")
    assert code == 1, err
    assert (
        "search.models.b[1]: with the model choice 'wrn_16_1' for b, edge a.f2 -> b.f2: hint's "
        "1x1 regressor keeps the spatial size" in err
    )


def test_deep_passes_model_choices_that_fit(tmp_path: Path, cli: Any) -> None:
    models = [{"type": "small_cnn", "width": 8}, {"type": "small_cnn", "width": 16}]
    code, _, err = cli("validate", write_spec(tmp_path, _searched(models)), "--deep")
    assert code == 0, err


@pytest.mark.parametrize(("key", "end"), [("to", "b.f2"), ("from", "a.f2")])
def test_a_search_edge_naming_a_tap_is_one_clear_error(
    tmp_path: Path, cli: Any, key: str, end: str
) -> None:
    """It was "'b.f2' is not a node" plus, for each loss choice, "this edge needs a loss
    between logits", an error per choice that followed from the first."""
    choice = {"to": "b", "from": "a", "losses": ["attention", "hint"]} | {key: end}
    data = spec(search={"trials": 2, "edges": [choice]})
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1 and "(1 error, " in err, err
    assert f"search.edges[0].{key}: '{end}' names a tap" in err
    assert "cannot be chosen" not in err


def test_a_feature_edge_into_its_own_node_is_not_hinted_to_the_labels(
    tmp_path: Path, cli: Any
) -> None:
    """The hint said `from: labels`, which a feature edge cannot take (labels have no taps)."""
    data = copy.deepcopy(SPEC)
    data["edges"][3] = {"to": "b.f2", "from": "b.f2", "loss": "attention"}
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1 and "edges[3].from: 'b' cannot teach itself" in err, err
    assert "name another node's tap" in err and "from: labels" not in err
