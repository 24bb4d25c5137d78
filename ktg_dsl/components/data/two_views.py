"""Two augmented views of every training batch, for self-supervised graphs.

:class:`TwoViewBatches` takes the same shuffled, seeded batches as supervised training
(:class:`~ktg_dsl.components.data.loader.TensorBatches`, without its crop-and-flip), scaled to
``[0, 1]``, and augments each batch twice with the declared pipeline, per sample and on the
batch's device, by kornia (the well-kept library of batched GPU augmentations: a crop, flip or
jitter drawn for every image), then normalises with the training part's mean and std.
Images of 8 bits are divided by 255; float images that reach outside ``[0, 1]`` are mapped
onto it by the training part's minimum and maximum for the augmentation and back after it
(kornia's colour steps clamp to ``[0, 1]``: they would clip such images, and the views would
no longer be the images the kNN bank holds). Batches
are ``x [B, 2, C, H, W]`` (view 1 at ``[:, 0]``) and the labels ``y [B]`` (kept for the record;
the self-supervised engine never trains on them).

The augmentation's randomness is seeded from ``(seed, epoch, batch)`` alone, so a run resumed
mid-epoch sees the same views. Steps: ``random_resized_crop`` (to the image's own size),
``horizontal_flip``, ``color_jitter`` (saturation and hue leave a one-channel image as it is),
``grayscale``; their options are those of ``spec/self_supervised.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from .bundle import DataBundle, derive_seed
from .loader import Device, TensorBatches


def build_pipeline(steps: Sequence[dict[str, Any]], channels: int, size: tuple[int, int]) -> Any:
    """A kornia ``AugmentationSequential`` for the declared steps (plain mappings with a
    ``type``, as the spec writes them)."""
    import kornia.augmentation as K

    def make(step: dict[str, Any]) -> Any:
        kind = step["type"]
        if kind == "random_resized_crop":
            return K.RandomResizedCrop(size, scale=tuple(step["scale"]), ratio=tuple(step["ratio"]))
        if kind == "horizontal_flip":
            return K.RandomHorizontalFlip(p=step["p"])
        if kind == "color_jitter":
            colour = channels == 3  # saturation and hue need RGB
            return K.ColorJitter(
                step["brightness"],
                step["contrast"],
                step["saturation"] if colour else 0.0,
                step["hue"] if colour else 0.0,
                p=step["p"],
            )
        if kind == "grayscale":
            return K.RandomGrayscale(p=step["p"])
        raise ValueError(f"unknown augmentation step '{kind}'")

    return K.AugmentationSequential(*[make(s) for s in steps])


class TwoViewBatches:
    """``(x [B, 2, C, H, W], y [B])`` batches of the bundle's training part; see the module
    docstring. ``set_epoch``, ``iterate(start)`` and ``len`` as ``TensorBatches``."""

    def __init__(
        self,
        bundle: DataBundle,
        batch_size: int,
        steps: Sequence[dict[str, Any]],
        *,
        seed: int,
        device: Device = "cpu",
        drop_last: bool = True,
        on_device: bool = False,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        channels, height, width = bundle.input_shape
        # the whole batch is augmented and this replica's part cut from it: every replica
        # draws what one process draws (exactly its views)
        self.shard = shard
        self.raw = TensorBatches(
            bundle.train,
            batch_size,
            mean=[0.0] * channels,
            std=[1.0] * channels,
            shuffle=True,
            drop_last=drop_last,
            device=device,
            seed=seed,
            on_device=on_device,
        )
        self.seed = seed
        self.pipeline = build_pipeline(steps, channels, (height, width))
        self.low, self.span = pixel_range(bundle.train.images)
        dev = torch.device(device)
        self._mean = torch.tensor(bundle.mean, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        self._std = torch.tensor(bundle.std, dtype=torch.float32, device=dev).view(1, -1, 1, 1)

    @property
    def epoch(self) -> int:
        return self.raw.epoch

    def set_epoch(self, epoch: int) -> None:
        self.raw.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.raw)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate()

    def iterate(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        replica, replicas = self.shard
        for i, (x, y) in enumerate(self.raw.iterate(start), start=start):
            both = self.views(x, i)
            if replicas > 1:
                both, y = both.tensor_split(replicas)[replica], y.tensor_split(replicas)[replica]
            yield both, y

    def views(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Two augmentations of ``x`` (as the loader gives it, unnormalised), normalised:
        ``[B, 2, C, H, W]``."""
        unit = x if (self.low, self.span) == (0.0, 1.0) else (x - self.low) / self.span
        devices = [x.device] if x.device.type == "cuda" else []
        seed = derive_seed("views", self.seed, self.raw.epoch, batch)
        with torch.random.fork_rng(devices=devices, device_type=x.device.type):
            # the CPU's generator and the batch's GPU's, the two fork_rng restores (not
            # torch.manual_seed: it would reseed every other GPU, and leave it reseeded)
            torch.random.default_generator.manual_seed(seed)
            if devices:
                with torch.cuda.device(x.device):
                    torch.cuda.manual_seed(seed)
            one, two = self.pipeline(unit), self.pipeline(unit)
        both = torch.stack([one, two], dim=1)
        if (self.low, self.span) != (0.0, 1.0):
            both = both * self.span + self.low
        return (both - self._mean.unsqueeze(1)) / self._std.unsqueeze(1)


def pixel_range(images: torch.Tensor) -> tuple[float, float]:
    """``(low, span)`` that map the training images onto ``[0, 1]`` for the augmentation:
    ``(0, 1)`` for 8-bit images (the loader divides them by 255) and for float images inside
    ``[0, 1]``; else the images' own minimum and range (widened to hold ``[0, 1]``)."""
    if not images.is_floating_point() or images.numel() == 0:
        return 0.0, 1.0
    low = min(float(images.min()), 0.0)
    high = max(float(images.max()), 1.0)
    return low, high - low
