"""The bundled self-supervised spec trains in-process and records knn_top1 for every node;
the bad inputs of a self-supervised graph are refused with their key paths and hints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktg_dsl.check import load_spec, validate_spec
from ktg_dsl.run.session import train_new

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "digits-simclr.yaml"


def test_bundled_spec_trains_and_logs_knn_for_every_node(tmp_path: Path) -> None:
    spec = load_spec(SPEC, overrides=["train.epochs=1", "train.threads=1", "data.batch_size=128"])
    run, result = train_new(spec, None, str(tmp_path / "run"), progress=False)
    assert result is not None and result.epochs_done == 1
    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    nodes = {r["node"]: r for r in rows if "node" in r}
    assert set(nodes) == {"a", "b"}
    for row in nodes.values():
        assert 0.0 <= row["knn_top1"] <= 100.0
        assert row["val_top1"] == row["knn_top1"]  # the key every reader uses, as kNN
        assert row["train_loss"] > 0.0 and "labels" in row["edges"]
    assert result.best["a"]["val_top1"] == nodes["a"]["knn_top1"]
    assert (run.path / "best" / "a.pt").exists()
