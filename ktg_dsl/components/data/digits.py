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

Harder protocols (every method reaches ~99.7% on the full digits): ``train_per_class`` and
``label_noise`` on the training part only (:mod:`ktg_dsl.components.data.protocol`).

Normalisation statistics come from the kept training images.
"""

from __future__ import annotations

import torch

from .bundle import (
    DataBundle,
    TensorSplit,
    channel_stats,
    check_split_name,
    generator,
    stratified_split,
)
from .protocol import apply_protocol

TEST_FRACTION = 0.2
VAL_FRACTION = 0.2
_TEST_SEED = "digits-test-v1"  # constant: the test part never depends on the spec
NUM_CLASSES = 10


def load_digits_bundle(
    seed: int, split: str, train_per_class: int | None = None, label_noise: float = 0.0
) -> DataBundle:
    from sklearn.datasets import load_digits

    check_split_name(split)
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

    train, protocol = apply_protocol(
        train,
        name="digits",
        num_classes=NUM_CLASSES,
        seed=seed,
        split=split,
        train_per_class=train_per_class,
        label_noise=label_noise,
    )
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
