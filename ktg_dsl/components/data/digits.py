"""The scikit-learn digits: 1,797 grey 8x8 images of handwritten digits, 10 classes, offline.

Preprocessing: scikit-learn stores each pixel as an integer count 0..16; ktg divides by 16 and
keeps ``float32`` images of shape ``[N, 1, 8, 8]`` in ``[0, 1]``. Normalisation statistics
come from the training part, as for every dataset. No augmentation (the images are tiny and
centred).

Splits:

* a fixed **test** part, 20% of every class (359 images), chosen with a constant seed that does
  not depend on the spec, so every run of every spec is tested on the same images;
* the remaining 1,438 images split per class 80/20 into **train** (1,151) and **val** (287)
  with the spec's seed.

``split: val`` trains on train and evaluates on val; ``split: test`` trains on train + val
(1,438) and evaluates on test.

Harder protocols (every method reaches ~99.7% on the full digits), applied to the training part
only, after the split, so the evaluation part (val or test) is exactly the one without them:

* ``train_per_class``: keep only this many training images of every class, chosen from the
  spec's seed (more than the smallest class holds is an error that says how many it holds);
* ``label_noise``: symmetric label noise, exactly ``round(label_noise * N)`` of the N kept
  training labels, chosen from the spec's seed, each changed to one of the *other* nine classes
  uniformly at random.

Normalisation statistics come from the kept training images.
"""

from __future__ import annotations

import torch

from ...errors import KtgRuntimeError
from .bundle import (
    DataBundle,
    TensorSplit,
    channel_stats,
    check_split_name,
    generator,
    stratified_split,
)

TEST_FRACTION = 0.2
VAL_FRACTION = 0.2
_TEST_SEED = "digits-test-v1"  # constant: the test part never depends on the spec
NUM_CLASSES = 10


def load_digits_bundle(
    seed: int, split: str, train_per_class: int | None = None, label_noise: float = 0.0
) -> DataBundle:
    from sklearn.datasets import load_digits

    check_split_name(split)
    if train_per_class is not None and train_per_class < 1:
        raise KtgRuntimeError(f"digits: train_per_class must be >= 1, got {train_per_class}")
    if not 0.0 <= label_noise < 1.0:
        raise KtgRuntimeError(f"digits: label_noise must lie in [0, 1), got {label_noise}")
    raw = load_digits()
    images = torch.from_numpy(raw.images).to(torch.float32).div_(16.0).unsqueeze(1)
    labels = torch.from_numpy(raw.target).to(torch.int64)
    everything = TensorSplit(images.contiguous(), labels)

    rest_idx, test_idx = stratified_split(labels, TEST_FRACTION, generator(_TEST_SEED))
    rest = everything.subset(rest_idx)
    if split == "test":
        train, evaluation = rest, everything.subset(test_idx)
    else:
        train_idx, val_idx = stratified_split(
            rest.labels, VAL_FRACTION, generator("digits-val", seed)
        )
        train, evaluation = rest.subset(train_idx), rest.subset(val_idx)

    protocol = []
    if train_per_class is not None:
        train = train.subset(_per_class(train.labels, train_per_class, seed, split))
        protocol.append(f"{train_per_class} per class")
    if label_noise > 0.0:
        train = TensorSplit(train.images, _noisy(train.labels, label_noise, seed, split))
        protocol.append(f"{label_noise * 100:g}% of labels flipped")

    mean, std = channel_stats(train.images)
    return DataBundle(
        train=train,
        eval=evaluation,
        num_classes=NUM_CLASSES,
        input_shape=(1, 8, 8),
        mean=mean,
        std=std,
        augment=None,
        eval_name=split,
        description=(
            f"digits: train {len(train)} / {split} {len(evaluation)}"
            + (f" (seed {seed})" if split == "val" or protocol else "")
            + (f"; training part: {', '.join(protocol)}" if protocol else "")
        ),
        class_names=[str(d) for d in range(NUM_CLASSES)],
    )


def _per_class(labels: torch.Tensor, count: int, seed: int, split: str) -> torch.Tensor:
    """Sorted indices of ``count`` samples of every class, chosen at random from the seed."""
    sizes = torch.bincount(labels, minlength=NUM_CLASSES)
    smallest = int(sizes.min())
    if count > smallest:
        raise KtgRuntimeError(
            f"digits: train_per_class is {count}, but with split: {split} the training part "
            f"holds only {smallest} images of class {int(sizes.argmin())}, its smallest "
            f"({smallest}..{int(sizes.max())} per class): use at most {smallest}"
        )
    gen = generator("digits-per-class", seed, split)
    kept = []
    for cls in range(NUM_CLASSES):  # in class order, so the draws are reproducible
        members = torch.nonzero(labels == cls).squeeze(1)
        kept.append(members[torch.randperm(members.numel(), generator=gen)[:count]])
    return torch.sort(torch.cat(kept)).values


def _noisy(labels: torch.Tensor, rate: float, seed: int, split: str) -> torch.Tensor:
    """``labels`` with exactly ``round(rate * N)`` of them, chosen at random from the seed,
    moved to another class uniformly at random (never to their own)."""
    gen = generator("digits-label-noise", seed, split)
    n = labels.numel()
    flipped = torch.randperm(n, generator=gen)[: int(rate * n + 0.5)]
    shift = torch.randint(1, NUM_CLASSES, (flipped.numel(),), generator=gen)
    noisy = labels.clone()
    noisy[flipped] = (labels[flipped] + shift) % NUM_CLASSES
    return noisy
