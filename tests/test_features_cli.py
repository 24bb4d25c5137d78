"""Feature edges from the command line: the shipped digits spec trains; every bad input of the
kind (a tap on a module that does not exist, a tap on a loss that expects logits, a feature
edge into the labels, a hint between taps of different ranks) gets a clear message and a
non-zero exit, and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ktg_dsl.check import load_spec
from ktg_dsl.run.recipe import Recipe

from .conftest import ROOT, write_spec

SPEC = ROOT / "specs" / "digits-features.yaml"


def variant(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(SPEC.read_text())
    data.update(changes)
    return data


@pytest.mark.slow
def test_the_shipped_digits_spec_trains(tmp_path: Path) -> None:
    spec = load_spec(SPEC, overrides=["train.epochs=2", "train.precision=fp32"])
    recipe = Recipe(spec, tmp_path / "run", progress=False, tensorboard=False)
    recipe.setup()
    result = recipe.train()
    recipe.cleanup()
    assert result.epochs_done == 2
    rows = result.last
    assert all(rows[n]["val_top1"] > 20.0 for n in ("wide", "mid", "thin")), rows
    gates = rows["thin"]["gates"]  # the hint's gate falls to 0 at the last epoch
    assert set(gates) == {"labels", "wide", "mid", "wide.b3->b3"}
    assert len(recipe.program.nodes["thin"].adapters) == 1  # the hint's regressor


@pytest.mark.parametrize(
    ("change", "deep", "words"),
    [
        (
            {"taps": {"b2": "block2", "b3": "blok3"}},
            True,
            "nodes.thin.taps.b3: 'blok3' is not a module of the model (did you mean 'block3'?)",
        ),
        (
            {"edge": {"to": "thin.b2", "from": "wide.b2", "loss": "kl"}},
            False,
            "uses the 'kl' loss, which compares logits, but its ends name taps",
        ),
        (
            {"edge": {"to": "labels.b3", "from": "mid.b3", "loss": "hint"}},
            False,
            "edge into 'labels', which is not a node",
        ),
        (
            {"edge": {"to": "thin", "from": "labels.b3"}},
            False,
            "the labels have no taps",
        ),
        (
            {"taps": {"b2": "block2", "b3": "fc"}},
            True,
            "hint maps the receiver's tap (10) onto the sender's (32x4x4)",
        ),
    ],
)
def test_bad_feature_edges(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch, change: dict, deep: bool, words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    data = variant()
    if "taps" in change:
        data["nodes"]["thin"]["taps"] = change["taps"]
    if "edge" in change:
        data["edges"].append(change["edge"])
    path = write_spec(tmp_path, data)
    args = ["validate", path] + (["--deep"] if deep else [])
    code, _, err = cli(*args)
    assert code == 1 and words in err and "Traceback" not in err, err
    code, _, err = cli("train", path, "--no-progress", "--set", "train.epochs=1")
    assert code == 1 and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.pt"))
