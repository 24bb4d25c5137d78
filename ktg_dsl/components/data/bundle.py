"""What every dataset builder returns: a :class:`DataBundle` of in-memory tensors.

A bundle holds a training split and one evaluation split (``val`` or ``test``), both as whole
tensors: ``images`` is ``uint8`` ``[N, C, H, W]`` with values 0..255, or ``float32`` already on a
0..1-like scale; ``labels`` is ``int64`` ``[N]``. Images are decoded once when the bundle is
built, so training never touches files or PIL; batches are cut, augmented and normalised by
:class:`ktg_dsl.components.data.loader.TensorBatches`.

Normalisation statistics (``mean``, ``std`` per channel) are always computed from the training
split only, on the scale the loader feeds the model (``uint8`` images divided by 255, ``float32``
images as stored), so nothing about the evaluation images leaks into training.

Randomness that defines a split (which images are held out) comes from :func:`derive_seed`, a
hash of the spec's seed and a purpose tag, so every split is reproducible from the spec alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ...errors import KtgRuntimeError

SPLITS = ("val", "test")


@dataclass
class TensorSplit:
    """One part of a dataset held in memory."""

    images: torch.Tensor  # uint8 [N, C, H, W] (0..255) or float32 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> TensorSplit:
        """The samples at ``indices`` (copied, so the original can be freed)."""
        return TensorSplit(
            self.images.index_select(0, indices), self.labels.index_select(0, indices)
        )

    @staticmethod
    def concat(parts: Sequence[TensorSplit]) -> TensorSplit:
        return TensorSplit(
            torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts])
        )


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation, applied per batch by the loader.

    ``pad``: a random crop of the original size out of the image zero-padded by ``pad`` pixels
    on every side (torchvision's ``RandomCrop(size, padding=pad)``). ``flip``: a random
    horizontal flip with probability 0.5.
    """

    pad: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        if self.pad < 0:
            raise KtgRuntimeError(f"augmentation padding must be >= 0, got {self.pad}")

    @property
    def active(self) -> bool:
        return self.pad > 0 or self.flip


@dataclass
class DataBundle:
    """A training split, an evaluation split and what a model needs to know about them.

    Construction validates everything (dtypes, shapes, label range, non-empty splits) and
    raises :class:`~ktg_dsl.errors.KtgRuntimeError` listing every problem found.
    """

    train: TensorSplit
    eval: TensorSplit
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]  # per channel, from the training split only
    std: tuple[float, ...]
    augment: Augment | None  # applied to training batches only
    eval_name: str  # "val" or "test"
    description: str  # one line for logs
    class_names: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        problems: list[str] = []
        if self.num_classes < 1:
            problems.append(f"num_classes must be >= 1, got {self.num_classes}")
        if len(self.input_shape) != 3:
            problems.append(f"input_shape must be (C, H, W), got {self.input_shape}")
        channels = self.input_shape[0] if self.input_shape else 0
        if len(self.mean) != channels or len(self.std) != channels:
            problems.append(
                f"mean/std need one value per channel ({channels}), got "
                f"{len(self.mean)} and {len(self.std)}"
            )
        if any(not s > 0 for s in self.std):
            problems.append(f"std must be > 0 in every channel, got {self.std}")
        if self.eval_name not in SPLITS:
            problems.append(f"eval_name must be 'val' or 'test', got '{self.eval_name}'")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            problems.append(f"{len(self.class_names)} class names for {self.num_classes} classes")
        for name, part in (("train", self.train), (self.eval_name, self.eval)):
            problems.extend(_split_problems(name, part, self.num_classes, self.input_shape))
        if problems:
            raise KtgRuntimeError(
                f"dataset '{self.description}' is not usable:\n  " + "\n  ".join(problems)
            )


def _split_problems(
    name: str, part: TensorSplit, num_classes: int, input_shape: tuple[int, ...]
) -> list[str]:
    images, labels = part.images, part.labels
    problems = []
    if images.dtype not in (torch.uint8, torch.float32):
        problems.append(f"{name} images must be uint8 or float32, got {images.dtype}")
    if images.dim() != 4 or tuple(images.shape[1:]) != tuple(input_shape):
        problems.append(
            f"{name} images must have shape [N, {', '.join(map(str, input_shape))}]"
            f", got {list(images.shape)}"
        )
    if labels.dtype != torch.int64 or labels.dim() != 1:
        problems.append(f"{name} labels must be int64 [N], got {labels.dtype} {list(labels.shape)}")
    elif images.dim() >= 1 and labels.shape[0] != images.shape[0]:
        problems.append(f"{name} has {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.numel() == 0:
        problems.append(f"{name} split is empty")
    elif labels.dtype == torch.int64:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            problems.append(f"{name} labels must lie in [0, {num_classes}), found {low}..{high}")
    return problems


def check_split_name(split: str) -> None:
    if split not in SPLITS:
        raise KtgRuntimeError(f"data.split must be 'val' or 'test', got '{split}'")


def derive_seed(*parts: int | str) -> int:
    """A well-mixed seed from the spec's seed and purpose tags.

    torch's CPU generator keeps only the low 32 bits of a seed, so arithmetic such as
    ``seed * 1000 + epoch`` or ``seed << 32 | epoch`` would make distinct streams collide;
    hashing spreads every part over all bits and is stable across processes and platforms.
    """
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def generator(*parts: int | str) -> torch.Generator:
    """A CPU generator seeded by :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def stratified_split(
    labels: torch.Tensor, fraction: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(kept, held_out)``, both sorted: from every class, ``fraction`` of its samples
    (rounded half up, but at least one stays) are held out, chosen at random from ``gen``."""
    kept, held = [], []
    for cls in torch.unique(labels).tolist():  # sorted, so the draws are reproducible
        members = torch.nonzero(labels == cls).squeeze(1)
        order = members[torch.randperm(members.numel(), generator=gen)]
        # Never the last one: a class missing from training could not be learnt at all.
        n_held = min(int(fraction * members.numel() + 0.5), members.numel() - 1)
        held.append(order[:n_held])
        kept.append(order[n_held:])
    empty = torch.zeros(0, dtype=torch.int64)
    return (
        torch.sort(torch.cat(kept) if kept else empty).values,
        torch.sort(torch.cat(held) if held else empty).values,
    )


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std on the loader's scale: uint8 / 255, float as is.

    uint8 statistics are exact, from a 256-bin histogram per channel (fast and without a
    float copy of the dataset); float images are summed in float64, a chunk at a time.
    """
    channels = images.shape[1]
    means, stds = [], []
    if images.dtype == torch.uint8:
        values = torch.arange(256, dtype=torch.float64) / 255.0
        for c in range(channels):
            counts = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
            total = counts.sum()
            mean = (counts * values).sum() / total
            var = (counts * (values - mean) ** 2).sum() / total
            means.append(float(mean))
            stds.append(float(var.sqrt()))
    else:
        total = torch.zeros(channels, dtype=torch.float64)
        total_sq = torch.zeros(channels, dtype=torch.float64)
        for start in range(0, images.shape[0], 1024):
            chunk = images[start : start + 1024].double()
            total += chunk.sum(dim=(0, 2, 3))
            total_sq += chunk.square().sum(dim=(0, 2, 3))
        count = images.numel() / max(channels, 1)
        mean_t = total / count
        var_t = (total_sq / count - mean_t.square()).clamp_min(0.0)
        means, stds = mean_t.tolist(), var_t.sqrt().tolist()
    # A constant channel has std 0; dividing by 1 instead only centres it rather than
    # producing inf/NaN inputs.
    stds = [s if s > 1e-8 else 1.0 for s in stds]
    return tuple(means), tuple(stds)
