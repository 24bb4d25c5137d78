"""``ktg bench`` end to end on a tiny graph with feature edges: every variant is measured and
the ratios (including the feature edges' cost and the unused taps' cost) are reported and
written as JSON. No timing is asserted: benchmarks report, tests check the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import write_spec


def test_bench_reports_every_variant_and_the_cost_of_feature_edges(tmp_path: Path, cli) -> None:
    taps = {"f2": "block2", "f3": "block3"}
    data = {
        "version": 1,
        "name": "tiny-bench",
        "data": {
            "dataset": {"type": "synthetic", "num_classes": 4, "image_size": 8, "train_size": 64},
            "batch_size": 8,
        },
        "train": {"epochs": 4},
        "nodes": {
            "a": {"model": {"type": "small_cnn", "width": 4}, "taps": taps},
            "b": {"model": {"type": "small_cnn", "width": 4}, "taps": taps},
        },
        "gate_matrix": [["through", "through"], ["through", "through"]],
        "edges": [{"to": "a.f2", "from": "b.f2", "loss": "attention"}],
    }
    out = tmp_path / "bench.json"
    code, stdout, err = cli(
        "bench",
        write_spec(tmp_path, data),
        "--steps",
        "1",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--json",
        out,
    )
    assert code == 0, err
    result = json.loads(out.read_text())
    names = set(result["images_per_s"])
    assert {"baseline", "engine(fp32)", "engine(logits edges)", "engine(no taps)"} <= names
    assert all(v > 0 for v in result["images_per_s"].values())
    assert {"engine_auto/logits_edges_only", "unused_taps/no_taps"} <= set(result["ratios"])
    assert "engine(logits edges)" in stdout and "unused_taps/no_taps" in stdout


def _tiny(tmp_path: Path, **distributed: object) -> Path:
    node = {"model": {"type": "small_cnn", "width": 4}}
    data = {
        "version": 1,
        "name": "tiny-bench-ranks",
        "data": {
            "dataset": {"type": "synthetic", "num_classes": 5, "image_size": 8, "train_size": 64},
            "batch_size": 8,
        },
        "train": {"epochs": 4, "device": "cpu", "distributed": distributed},
        "nodes": {"a": node, "b": node, "c": node},
        "gate_matrix": [["through"] * 3] * 3,
    }
    return write_spec(tmp_path, data)


@pytest.mark.slow
def test_bench_nproc_measures_ranks_against_one_process(tmp_path: Path) -> None:
    from .conftest import run_ktg

    out = tmp_path / "ranks.json"
    args = ("--nproc", "2", "--steps", "2", "--rounds", "2", "--warmup", "1", "--json", out)
    done = run_ktg("bench", _tiny(tmp_path), *args, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    ranks = result["ranks"]
    assert ranks["nproc"] == 2 and ranks["backend"] == "gloo" and ranks["data_parallel"] == 1
    # three equal nodes on two groups: two on one, one on the other, every node placed once
    assert sorted(len(g) for g in ranks["graph_groups"]) == [1, 2]
    assert sorted(n for g in ranks["graph_groups"] for n in g) == ["a", "b", "c"]
    # each rank receives the other group's logits: its nodes x batch 8 x 5 classes x fp32,
    # padded to the larger group's two nodes
    assert ranks["exchange_bytes_per_step"] == 2 * 8 * 5 * 4
    assert len(result["per_round_ms"]["single"]) == len(result["per_round_ms"]["ranks"]) == 2
    assert result["single"]["images_per_s"] > 0 and ranks["images_per_s"] > 0
    assert 0 < result["ratios"]["exchange/step"] < 1
    assert "ranks/single" in done.stdout and "received per rank per step" in done.stdout


def test_bench_nproc_refuses_a_mesh_that_cannot_work(tmp_path: Path, cli) -> None:
    code, _, err = cli("bench", _tiny(tmp_path, data_parallel=2), "--nproc", "3")
    assert code == 2
    assert "data_parallel: 2" in err and "Traceback" not in err


def test_bench_never_writes_its_json_over_the_spec(tmp_path: Path, cli) -> None:
    """``--json SPEC`` replaced the spec with the results after minutes of measuring."""
    spec = _tiny(tmp_path)
    before = spec.read_bytes()
    (tmp_path / "link.yaml").symlink_to(spec)
    for target in (spec, tmp_path / "link.yaml", tmp_path / "." / spec.name):
        code, _, err = cli("bench", spec, "--json", target, "--steps", "1", "--rounds", "1")
        assert code == 2 and "is the spec" in err and "writing it would replace it" in err, err
    assert spec.read_bytes() == before
