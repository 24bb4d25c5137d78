"""The digits' harder protocols: few training images per class and symmetric label noise.

Both apply to the training part only; the evaluation part (val or test) must be exactly the one
of the plain dataset, and everything must follow from the spec's seed.
"""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from ktg_dsl.components.data.bundle import TensorSplit, channel_stats
from ktg_dsl.components.data.digits import load_digits_bundle
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.registry import DATASETS, load_builtins

from .conftest import base_spec
from .test_spec import errors_of


def _keys(split: TensorSplit) -> list[bytes]:
    """Each image as bytes (the 1,797 digits images are all distinct)."""
    return [bytes(img.contiguous().view(torch.uint8).numpy()) for img in split.images]


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize("per_class", [1, 5, 20])
def test_train_per_class_counts(split: str, per_class: int) -> None:
    plain = load_digits_bundle(seed=3, split=split)
    few = load_digits_bundle(seed=3, split=split, train_per_class=per_class)
    assert torch.bincount(few.train.labels, minlength=10).tolist() == [per_class] * 10
    # a subset of the plain training part, with the same labels, no image twice
    keys = _keys(few.train)
    plain_labels = dict(zip(_keys(plain.train), plain.train.labels.tolist(), strict=True))
    assert len(set(keys)) == len(keys) and set(keys) <= set(plain_labels)
    assert [plain_labels[k] for k in keys] == few.train.labels.tolist()
    # normalisation comes from the kept images
    assert few.mean == channel_stats(few.train.images)[0]
    assert f"{per_class} per class" in few.description


def test_train_per_class_largest_allowed_and_too_many() -> None:
    # with split: val the smallest class of the training part holds 111 images, with test 139
    assert len(load_digits_bundle(seed=0, split="val", train_per_class=111).train) == 1110
    assert len(load_digits_bundle(seed=0, split="test", train_per_class=139).train) == 1390
    with pytest.raises(KtgRuntimeError, match=r"holds only 111 images .* use at most 111"):
        load_digits_bundle(seed=0, split="val", train_per_class=112)
    with pytest.raises(KtgRuntimeError, match="use at most 139"):
        load_digits_bundle(seed=0, split="test", train_per_class=140)


@pytest.mark.parametrize("split", ["val", "test"])
def test_protocol_is_deterministic_from_the_seed(split: str) -> None:
    args = dict(split=split, train_per_class=10, label_noise=0.3)
    a, b = load_digits_bundle(seed=5, **args), load_digits_bundle(seed=5, **args)
    assert torch.equal(a.train.images, b.train.images)
    assert torch.equal(a.train.labels, b.train.labels)
    c = load_digits_bundle(seed=6, **args)
    assert _keys(a.train) != _keys(c.train)


def test_another_seed_draws_other_images_and_other_flips() -> None:
    # with split: test the training part is the same for every seed: only the draws differ
    few = [load_digits_bundle(seed=s, split="test", train_per_class=10) for s in (0, 1)]
    assert set(_keys(few[0].train)) != set(_keys(few[1].train))
    noisy = [load_digits_bundle(seed=s, split="test", label_noise=0.2) for s in (0, 1)]
    assert torch.equal(noisy[0].train.images, noisy[1].train.images)
    assert not torch.equal(noisy[0].train.labels, noisy[1].train.labels)


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize(
    "args",
    [dict(train_per_class=7), dict(label_noise=0.4), dict(train_per_class=20, label_noise=0.2)],
)
def test_evaluation_part_is_untouched(split: str, args: dict) -> None:
    plain = load_digits_bundle(seed=2, split=split)
    harder = load_digits_bundle(seed=2, split=split, **args)
    assert torch.equal(harder.eval.images, plain.eval.images)
    assert torch.equal(harder.eval.labels, plain.eval.labels)
    assert harder.eval_name == plain.eval_name == split


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.2, 0.4, 0.9])
@pytest.mark.parametrize("per_class", [None, 10])
def test_label_noise_rate_is_exact_and_never_keeps_the_label(
    rate: float, per_class: int | None
) -> None:
    clean = load_digits_bundle(seed=4, split="val", train_per_class=per_class)
    noisy = load_digits_bundle(seed=4, split="val", train_per_class=per_class, label_noise=rate)
    # the same images in the same order; only labels change
    assert torch.equal(noisy.train.images, clean.train.images)
    changed = noisy.train.labels != clean.train.labels
    n = len(clean.train)
    assert int(changed.sum()) == int(rate * n + 0.5)
    assert int(noisy.train.labels.min()) >= 0 and int(noisy.train.labels.max()) <= 9
    if rate:
        assert f"{rate * 100:g}% of labels flipped" in noisy.description
    else:
        assert "flipped" not in noisy.description


def test_label_noise_is_symmetric() -> None:
    # over the 1,438 training labels of split: test at 90% noise, every wrong class is used
    clean = load_digits_bundle(seed=0, split="test")
    noisy = load_digits_bundle(seed=0, split="test", label_noise=0.9)
    changed = noisy.train.labels != clean.train.labels
    shifts = (noisy.train.labels[changed] - clean.train.labels[changed]) % 10
    counts = torch.bincount(shifts, minlength=10)
    assert int(counts[0]) == 0 and int(counts[1:].min()) > 90  # ~144 each


def test_split_test_keeps_the_test_part_fixed() -> None:
    reference = load_digits_bundle(seed=0, split="test")
    for seed, args in ((0, {}), (1, dict(train_per_class=5)), (7, dict(label_noise=0.5))):
        bundle = load_digits_bundle(seed=seed, split="test", **args)
        assert torch.equal(bundle.eval.images, reference.eval.images)
        assert torch.equal(bundle.eval.labels, reference.eval.labels)
        # and no test image is trained on
        assert not set(_keys(bundle.train)) & set(_keys(bundle.eval))


def test_bad_values() -> None:
    with pytest.raises(KtgRuntimeError, match="label_noise must lie in"):
        load_digits_bundle(seed=0, split="val", label_noise=1.0)
    with pytest.raises(KtgRuntimeError, match="train_per_class must be >= 1"):
        load_digits_bundle(seed=0, split="val", train_per_class=0)


def test_through_the_catalog_and_spec_errors() -> None:
    load_builtins()
    digits = DATASETS.get("digits")
    bundle = digits.build(
        {"train_per_class": 20, "label_noise": 0.2},
        root="data",
        download=False,
        seed=0,
        split="val",
    )
    assert len(bundle.train) == 200 and "20 per class" in bundle.description
    for bad in ({"label_noise": 1.0}, {"label_noise": -0.1}, {"train_per_class": 0}):
        with pytest.raises(ValidationError):
            digits.check(bad)


def test_spec_checks_the_options() -> None:
    good = base_spec(
        data={"dataset": {"type": "digits", "train_per_class": 20, "label_noise": 0.2}}
    )
    assert errors_of(good) == []
    bad = base_spec(data={"dataset": {"type": "digits", "train_per_class": 0, "label_noise": 1}})
    text = "\n".join(errors_of(bad))
    assert "data.dataset.train_per_class: must be >= 1, got 0" in text, text
    assert "data.dataset.label_noise: must be < 1.0, got 1" in text, text
