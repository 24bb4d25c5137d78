"""What validate knows of a dataset's training part before loading it: digits' per-class limit
for the split, and a batch larger than the training part when the last batch is dropped (both
used to pass validate and stop training once the data was loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ktg_dsl.components.data import DIGITS_TRAIN
from ktg_dsl.components.data.digits import load_digits_bundle

from .conftest import small_spec, write_spec

QUICKSTART = Path(__file__).parent.parent / "specs" / "quickstart.yaml"


@pytest.mark.parametrize("split", ["val", "test"])
def test_the_digits_limits_are_the_loaders(split: str) -> None:
    """The numbers validate uses are what the loader makes, for any seed."""
    size, smallest = DIGITS_TRAIN[split]
    for seed in (0, 7):
        train = load_digits_bundle(seed=seed, split=split).train
        assert len(train) == size
        assert int(torch.bincount(train.labels).min()) == smallest


@pytest.mark.parametrize(
    ("sets", "words"),
    [
        (["data.dataset.train_per_class=112"], "with split: val the training part holds only 111"),
        (
            ["data.dataset.train_per_class=140", "data.split=test"],
            "with split: test the training part holds only 139",
        ),
        (["data.batch_size=1152"], "batch_size is 1152, more than the 1151 training images"),
        (["data.dataset.train_per_class=3"], "batch_size is 32, more than the 30 training"),
    ],
)
def test_validate_says_what_training_would_stop_on(cli: Any, sets: list[str], words: str) -> None:
    args = [a for s in sets for a in ("--set", s)]
    code, _, err = cli("validate", QUICKSTART, *args)
    assert code == 1 and words in err, err


@pytest.mark.parametrize(
    "sets",
    [
        ["data.dataset.train_per_class=111"],
        ["data.dataset.train_per_class=139", "data.split=test"],
        ["data.batch_size=1151"],
        ["data.batch_size=1152", "data.drop_last=false"],
    ],
)
def test_what_fits_stays_valid(cli: Any, sets: list[str]) -> None:
    code, _, err = cli("validate", QUICKSTART, *[a for s in sets for a in ("--set", s)])
    assert code == 0, err


def test_a_synthetic_training_part_smaller_than_a_batch(tmp_path: Path, cli: Any) -> None:
    nodes = {"a": {"model": {"type": "small_cnn", "width": 4}}}
    spec = write_spec(
        tmp_path, small_spec("s", nodes, [{"to": "a", "from": "labels"}], train_size=8)
    )
    code, _, err = cli("validate", spec)
    assert code == 1 and "data.batch_size: batch_size is 16, more than the 8 training" in err
    code, _, err = cli("train", spec, "--run-dir", tmp_path / "run")
    assert code == 1 and "more than the 8 training" in err and not (tmp_path / "run").exists()
