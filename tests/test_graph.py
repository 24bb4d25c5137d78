"""Graph checks, in the user's words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ktg_dsl
from ktg_dsl.check import parse_data
from ktg_dsl.graph import link

from .conftest import ROOT, base_spec


def issues(data: dict[str, Any]) -> list[str]:
    spec, found = parse_data(data)
    assert spec is not None, found
    return [i.format() for i in ktg_dsl.validate_spec(spec)]


def errors(data: dict[str, Any]) -> list[str]:
    return [i for i in issues(data) if ": warning:" not in i]


def test_edges_to_and_from_unknown_nodes() -> None:
    data = base_spec()
    data["edges"] += [{"to": "c", "from": "a"}, {"to": "a", "from": "bb"}]
    errs = errors(data)
    assert any("edges[4].to: edge into 'c', which is not a node" in e for e in errs), errs
    assert any(
        "edges[5].from: 'a' reads from 'bb', which is not a node (did you mean 'b'?)" in e
        for e in errs
    ), errs


def test_duplicate_edge_names_the_first() -> None:
    data = base_spec()
    data["edges"].append({"to": "a", "from": "b", "gate": "cutoff"})
    assert any(
        "edges[4]: duplicate edge b -> a (first written at edges[2])" in e for e in errors(data)
    )


def test_both_forms_at_once() -> None:
    data = base_spec(gate_matrix=[["through", "through"], ["through", "through"]])
    assert any("both 'edges' and 'gate_matrix'" in e for e in errors(data))


def test_no_edges_at_all() -> None:
    data = base_spec()
    del data["edges"]
    assert any("the spec has no edges" in e for e in errors(data))


def test_matrix_of_the_wrong_size() -> None:
    data = base_spec(gate_matrix=[["through", "through", "through"]])
    del data["edges"]
    errs = errors(data)
    assert any(
        "gate_matrix: the gate matrix has 1 rows but there are 2 nodes" in e for e in errs
    ), errs
    assert any("gate_matrix[0]: row 0 has 3 entries but there are 2 nodes" in e for e in errs)


def test_node_that_never_trains_needs_a_checkpoint(tmp_path: Path) -> None:
    data = base_spec()
    data["edges"] = [
        {"to": "a", "from": "labels"},
        {"to": "a", "from": "b"},
        {"to": "b", "from": "labels", "gate": "cutoff"},
    ]
    errs = errors(data)
    assert any("nodes.b: 'b' receives no edge that can ever open" in e for e in errs), errs
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"")  # the file must exist (--deep also reads it)
    data["nodes"]["b"]["checkpoint"] = str(teacher)
    assert errors(data) == []
    spec, _ = parse_data(data)
    assert spec is not None and link(spec).frozen == {"b"}


def test_rising_gate_in_a_one_epoch_run_never_opens() -> None:
    data = base_spec(train={"epochs": 1})
    data["edges"] = [
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels", "gate": "positive_linear"},
        {"to": "b", "from": "a", "gate": "positive_linear"},
    ]
    assert any("'b' receives no edge that can ever open" in e for e in errors(data))


def test_frozen_node_with_open_edges_is_a_contradiction() -> None:
    data = base_spec()
    data["nodes"]["b"]["frozen"] = True
    data["nodes"]["b"]["checkpoint"] = "t.pt"
    assert any(
        "nodes.b.frozen: 'b' is marked frozen but receives edges that open" in e
        for e in errors(data)
    )


def test_frozen_without_checkpoint_warns() -> None:
    data = base_spec()
    data["nodes"]["b"]["frozen"] = True
    data["edges"] = [{"to": "a", "from": "labels"}, {"to": "a", "from": "b"}]
    found = issues(data)
    assert any(": warning: 'b' is frozen without a checkpoint" in i for i in found), found
    assert errors(data) == []


def test_isolated_node_warns() -> None:
    data = base_spec()
    data["nodes"]["c"] = {"model": "small_cnn"}
    data["edges"].append({"to": "c", "from": "labels"})
    found = issues(data)
    assert any("nodes.c: warning: 'c' neither teaches nor learns" in i for i in found), found
    assert errors(data) == []


def test_single_node_pretraining_does_not_warn() -> None:
    data = base_spec(nodes={"a": {"model": "small_cnn"}}, edges=[{"to": "a", "from": "labels"}])
    assert issues(data) == []


def test_kl_between_different_class_counts() -> None:
    data = base_spec()
    data["nodes"]["b"]["num_classes"] = 5
    errs = errors(data)
    assert any("edges[2]: edge b -> a compares 5 classes with 10" in e for e in errs), errs
    assert any(
        "nodes.b.num_classes: 'b' has 5 outputs but the dataset has 10 classes" in e for e in errs
    )


def test_losses_must_fit_the_edge() -> None:
    data = base_spec()
    data["edges"][0]["loss"] = "kl"
    data["edges"][2]["loss"] = "ce"
    errs = errors(data)
    assert any("edges[0]: the labels edge into 'a' uses the 'kl' loss" in e for e in errs)
    assert any(
        "edges[2]: edge b -> a uses the 'ce' loss, which needs the labels" in e for e in errs
    )


def test_self_edge_and_reserved_name() -> None:
    data = base_spec()
    data["edges"].append({"to": "a", "from": "a"})
    assert any("'a' cannot teach itself" in e for e in errors(data))
    data = base_spec()
    data["nodes"]["labels"] = {"model": "small_cnn"}
    assert any("'labels' is reserved" in e for e in errors(data))


def test_search_objective_must_name_a_node() -> None:
    data = base_spec(
        search={
            "objective": {"node": "aa"},
            "models": {"z": ["resnet20"]},
            "edges": [{"to": "a", "from": "q", "gates": ["through"]}],
        }
    )
    errs = errors(data)
    assert any(
        "search.objective.node: the objective names 'aa', which is not a node "
        "(did you mean 'a'?)" in e
        for e in errs
    ), errs
    assert any("search.models.z: model choices for 'z'" in e for e in errs)
    assert any("search.edges[0].from: 'q' is not a node" in e for e in errs)


def test_search_params_must_name_a_numeric_key() -> None:
    data = base_spec(
        search={
            "params": [
                {"path": "defaults.loss.temperature", "low": 1, "high": 8, "log": True},
                {"path": "train.nonsense", "low": 1, "high": 2},
                {"path": "data.dataset", "low": 1, "high": 2},
                {"path": "defaults.optimizer.lr", "low": 0.2, "high": 0.1},
            ]
        }
    )
    errs = errors(data)
    assert not any("params[0]" in e for e in errs), errs
    assert any(
        "search.params[1].path: 'train.nonsense' cannot be 1: unknown key 'nonsense'" in e
        for e in errs
    ), errs
    assert any("search.params[2].path" in e for e in errs)
    assert any("search.params[3]: low (0.2) must be below high (0.1)" in e for e in errs)


def test_search_ranges_optuna_cannot_sample() -> None:
    data = base_spec(
        search={
            "params": [
                {"path": "defaults.loss.temperature", "low": 1, "high": 8, "log": True, "step": 1},
                {"path": "train.epochs", "low": 1, "high": 8, "integer": True, "step": 0.5},
                {"path": "defaults.loss.temperature", "low": 0.0, "high": 8},
            ]
        }
    )
    errs = errors(data)
    assert any(
        "search.params[0]: a range is either on a log scale or stepped" in e for e in errs
    ), errs
    assert any(
        "search.params[1]: an integer range needs whole low, high and step" in e for e in errs
    )
    assert any(
        "search.params[2].path: 'defaults.loss.temperature' cannot be 0: must be > 0.0" in e
        for e in errs
    ), errs


def _ssl_search(**knn: Any) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load((ROOT / "specs" / "digits-simclr.yaml").read_text())
    data["self_supervised"]["knn"].update(knn)
    node = next(iter(data["nodes"]))
    data["search"] = {"objective": {"node": node, "metric": "knn_top1"}, "trials": 2}
    return data


def test_search_range_ends_pass_the_graph_checks_before_any_trial() -> None:
    """A range that one end makes untrainable is refused by validate (and so before the
    search starts), at the range, in the graph check's own words: not trial by trial."""
    data = base_spec(
        search={
            "params": [
                {"path": "data.batch_size", "low": 8, "high": 100_000, "integer": True},
                {"path": "defaults.loss.temperature", "low": 1, "high": 8},
            ]
        }
    )
    errs = errors(data)
    assert any(
        "search.params[0].path: 'data.batch_size' cannot be 100000: batch_size is 100000, "
        "more than the 1151 training images" in e
        for e in errs
    ), errs
    assert not any("params[1]" in e for e in errs), errs

    data = _ssl_search()
    data["search"]["params"] = [
        {"path": "self_supervised.knn.k", "low": 5, "high": 5000, "integer": True}
    ]
    errs = errors(data)
    assert errs == [
        "<spec>  search.params[0].path: 'self_supervised.knn.k' cannot be 5000: k is 5000, "
        "more than the 1151 training images of the memory bank (set self_supervised.knn.k to "
        "at most 1151)"
    ], errs
    data["search"]["params"][0]["high"] = 1151  # the whole bank: allowed
    assert errors(data) == []


def test_search_range_ends_are_not_blamed_for_the_specs_own_graph_errors() -> None:
    data = _ssl_search(k=5000)  # the spec itself is wrong: said once, at its own key
    data["search"]["params"] = [{"path": "train.epochs", "low": 1, "high": 4, "integer": True}]
    errs = errors(data)
    assert len(errs) == 1 and "  self_supervised.knn.k: k is 5000" in errs[0], errs


def test_graph_structure() -> None:
    spec, _ = parse_data(base_spec())
    assert spec is not None
    g = link(spec).to_networkx()
    assert set(g.nodes) == {"labels", "a", "b"}
    assert set(g.edges) == {("labels", "a"), ("labels", "b"), ("b", "a"), ("a", "b")}


def test_feature_edges_may_sit_beside_a_gate_matrix() -> None:
    data = base_spec()
    del data["edges"]
    data["gate_matrix"] = [["through", "through"], ["through", "through"]]
    for node in ("a", "b"):
        data["nodes"][node]["taps"] = {"f3": "block3"}
    data["edges"] = [{"to": "a.f3", "from": "b.f3", "loss": "attention"}]
    spec, found = parse_data(data)
    assert spec is not None and not [i for i in found if i.is_error]
    report = link(spec)
    assert not [i for i in report.issues if i.is_error], report.issues
    assert [e.key for e in report.edges if e.on_features] == ["b.f3->a.f3"]
    assert len(report.edges) == 5
    data["edges"].append({"to": "a", "from": "b"})  # a logits edge: the two forms again
    spec, _ = parse_data(data)
    assert spec is not None
    assert any("both 'edges' and 'gate_matrix'" in i.message for i in link(spec).issues)


def _warnings(data: dict[str, Any]) -> list[str]:
    spec, found = parse_data(data)
    assert spec is not None and not [i for i in found if i.is_error]
    return [f"{'.'.join(map(str, i.path))}: {i.message}" for i in link(spec).issues]


def test_a_ring_without_labels_is_warned_node_by_node() -> None:
    """Models that teach each other with no labels edge anywhere (and no frozen teacher) only
    imitate networks that never learn: networkx's descendants of the labels and the teachers
    miss them."""
    ring = base_spec(edges=[{"to": "a", "from": "b"}, {"to": "b", "from": "a"}])
    found = _warnings(ring)
    for node in ("a", "b"):
        assert any(
            w.startswith(f"nodes.{node}: '{node}' trains, but neither the labels nor a frozen")
            for w in found
        ), found
    # one labels edge into the ring reaches both; the labels edges of the base reach each
    fed = base_spec(edges=[{"to": "a", "from": "labels"}, *ring["edges"]])
    assert not [w for w in _warnings(fed) if "neither the labels" in w]
    assert not [w for w in _warnings(base_spec()) if "neither the labels" in w]


def test_a_frozen_teacher_is_a_source_of_knowledge(tmp_path: Path) -> None:
    weights = tmp_path / "t.pt"
    weights.write_bytes(b"not read by the graph checks")
    data = base_spec(edges=[{"to": "a", "from": "t"}, {"to": "b", "from": "a"}])
    data["nodes"]["t"] = {"model": "small_cnn", "frozen": True, "checkpoint": str(weights)}
    assert not [w for w in _warnings(data) if "neither the labels" in w]
    report = link(parse_data(data)[0])  # type: ignore[arg-type]
    assert report.frozen == {"t"} and [e.receiver for e in report.readers("t")] == ["a"]
