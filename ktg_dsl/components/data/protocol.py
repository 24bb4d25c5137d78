"""Harder training protocols, applied to a dataset's training part only, after its split, so
the evaluation part (val or test) is exactly the one without them:

* ``train_per_class``: keep only this many training images of every class, chosen from the
  spec's seed (more than the smallest class holds is an error that says how many it holds);
* ``label_noise``: symmetric label noise, exactly ``round(label_noise * N)`` of the N kept
  training labels, chosen from the spec's seed, each changed to one of the *other* classes
  uniformly at random.

Shared by the digits and the torchvision datasets; each names its random streams after itself
(``<name>-per-class``, ``<name>-label-noise``), so adding a dataset never changes another's
draws.
"""

from __future__ import annotations

import torch

from ...errors import KtgRuntimeError
from .bundle import TensorSplit, generator


def apply_protocol(
    train: TensorSplit,
    *,
    name: str,
    num_classes: int,
    seed: int,
    split: str,
    train_per_class: int | None,
    label_noise: float,
) -> tuple[TensorSplit, list[str]]:
    """The training part with the protocol applied, and its words for the log line."""
    if train_per_class is not None and train_per_class < 1:
        raise KtgRuntimeError(f"{name}: train_per_class must be >= 1, got {train_per_class}")
    if not 0.0 <= label_noise < 1.0:
        raise KtgRuntimeError(f"{name}: label_noise must lie in [0, 1), got {label_noise}")
    words = []
    if train_per_class is not None:
        gen = generator(f"{name}-per-class", seed, split)
        kept = per_class(train.labels, train_per_class, num_classes, gen, f"{name}: ", split)
        train = train.subset(kept)
        words.append(f"{train_per_class} per class")
    if label_noise > 0.0:
        gen = generator(f"{name}-label-noise", seed, split)
        train = TensorSplit(train.images, noisy(train.labels, label_noise, num_classes, gen))
        words.append(f"{label_noise * 100:g}% of labels flipped")
    return train, words


def eval_subset(
    evaluation: TensorSplit, count: int | None, name: str, num_classes: int, split: str
) -> TensorSplit:
    """``count`` images of every class of the evaluation part, drawn from a constant seed (not
    the spec's), so every spec and every seed is evaluated on the same test images; None
    keeps them all. For a CPU budget: evaluating 10,000 images costs more than an epoch."""
    if count is None:
        return evaluation
    gen = generator(f"{name}-eval-subset", split)
    kept = per_class(
        evaluation.labels, count, num_classes, gen, f"{name}: ", split, "eval_per_class", split
    )
    return evaluation.subset(kept)


def per_class(
    labels: torch.Tensor,
    count: int,
    num_classes: int,
    gen: torch.Generator,
    who: str,
    split: str,
    key: str = "train_per_class",
    part: str = "training",
) -> torch.Tensor:
    """Sorted indices of ``count`` samples of every class, chosen at random from ``gen``
    (``who``, ``key``, ``part``: the words of the error when a class has fewer)."""
    sizes = torch.bincount(labels, minlength=num_classes)
    smallest = int(sizes.min())
    if count > smallest:
        raise KtgRuntimeError(
            f"{who}{key} is {count}, but with split: {split} the {part} part "
            f"holds only {smallest} images of class {int(sizes.argmin())}, its smallest "
            f"({smallest}..{int(sizes.max())} per class): use at most {smallest}"
        )
    kept = []
    for cls in range(num_classes):  # in class order, so the draws are reproducible
        members = torch.nonzero(labels == cls).squeeze(1)
        kept.append(members[torch.randperm(members.numel(), generator=gen)[:count]])
    return torch.sort(torch.cat(kept)).values


def noisy(
    labels: torch.Tensor, rate: float, num_classes: int, gen: torch.Generator
) -> torch.Tensor:
    """``labels`` with exactly ``round(rate * N)`` of them, chosen at random from ``gen``,
    moved to another class uniformly at random (never to their own)."""
    n = labels.numel()
    flipped = torch.randperm(n, generator=gen)[: int(rate * n + 0.5)]
    shift = torch.randint(1, num_classes, (flipped.numel(),), generator=gen)
    changed = labels.clone()
    changed[flipped] = (labels[flipped] + shift) % num_classes
    return changed
