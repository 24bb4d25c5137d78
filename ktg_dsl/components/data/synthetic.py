"""Synthetic images for tests and benchmarks: no files, any size, learnable.

Each class has one fixed prototype image drawn from N(0, 1) with the spec's seed; a sample is
its class's prototype plus ``noise`` x N(0, 1) per pixel, stored as ``float32``
``[N, channels, image_size, image_size]``. Labels cycle through the classes (so every class
has ``size // num_classes`` or one more samples) in a shuffled order.

The training part has ``train_size`` samples; the evaluation part ``val_size`` fresh samples
around the same prototypes, named ``val`` or ``test`` after ``data.split`` (the two are drawn
from different streams, so test samples are not the validation samples). Everything depends
on the seed only. Normalisation statistics come from the training part. Augmentation
(``augment: true``; off by default): random crop with ``image_size // 8`` pixels of zero
padding and random horizontal flip.
"""

from __future__ import annotations

import torch

from ...errors import KtgRuntimeError
from .bundle import (
    Augment,
    DataBundle,
    TensorSplit,
    channel_stats,
    check_split_name,
    generator,
)
from .memory import synthetic_too_big


def _draw(prototypes: torch.Tensor, size: int, noise: float, gen: torch.Generator) -> TensorSplit:
    num_classes = prototypes.shape[0]
    labels = (torch.arange(size) % num_classes)[torch.randperm(size, generator=gen)]
    images = torch.randn((size, *prototypes.shape[1:]), generator=gen)
    # in place, a chunk at a time: the peak is the images themselves, not three copies
    for start in range(0, size, 4096):
        chunk = images[start : start + 4096]
        chunk.mul_(noise).add_(prototypes[labels[start : start + 4096]])
    return TensorSplit(images, labels.to(torch.int64))


def load_synthetic_bundle(
    seed: int,
    split: str,
    num_classes: int = 10,
    image_size: int = 32,
    channels: int = 3,
    train_size: int = 1024,
    val_size: int = 256,
    noise: float = 1.0,
    augment: bool = False,
) -> DataBundle:
    check_split_name(split)
    sizes = dict(
        num_classes=num_classes,
        image_size=image_size,
        channels=channels,
        train_size=train_size,
        val_size=val_size,
    )
    problem = synthetic_too_big(sizes)
    if problem is not None:  # before anything is allocated
        raise KtgRuntimeError(problem)
    shape = (channels, image_size, image_size)
    prototypes = torch.randn((num_classes, *shape), generator=generator("synthetic-proto", seed))
    train = _draw(prototypes, train_size, noise, generator("synthetic-train", seed))
    evaluation = _draw(prototypes, val_size, noise, generator(f"synthetic-{split}", seed))
    mean, std = channel_stats(train.images)
    return DataBundle(
        train=train,
        eval=evaluation,
        num_classes=num_classes,
        input_shape=shape,
        mean=mean,
        std=std,
        augment=Augment(pad=image_size // 8, flip=True) if augment else None,
        eval_name=split,
        description=(
            f"synthetic: {num_classes} classes, {channels}x{image_size}x{image_size}, "
            f"noise {noise:g}, train {train_size} / {split} {val_size} (seed {seed})"
        ),
    )
