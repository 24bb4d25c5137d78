"""``ktg bench`` end to end on a tiny graph with feature edges: every variant is measured and
the ratios (including the feature edges' cost and the unused taps' cost) are reported and
written as JSON. No timing is asserted: benchmarks report, tests check the report."""

from __future__ import annotations

import json
from pathlib import Path

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
