"""Batches of an in-memory :class:`~ktg_dsl.components.data.bundle.TensorSplit`, on a device.

:class:`TensorBatches` replaces a ``DataLoader`` for datasets that fit in memory. Each batch is
gathered from the split's tensors, moved to the device, augmented there (random crop with
zero padding, random horizontal flip: vectorised over the batch, no per-image Python code) and
normalised to ``float32`` ``(x / 255 - mean) / std`` (``(x - mean) / std`` for float images).

Reproducibility: all randomness of an epoch (the shuffle order, crop offsets, flips) is drawn
up front from a CPU ``torch.Generator`` seeded from ``(seed, epoch)`` alone. Epoch ``e`` thus
yields exactly the same batches whether training ran straight through or was resumed after a
kill, on the CPU or on a GPU, with or without ``on_device``. Call :meth:`set_epoch` before
iterating each epoch (it is not advanced automatically).

Two ways to reach the device:

* copy path (default): each batch is gathered on the CPU, pinned when the target is CUDA, and
  copied with ``non_blocking=True``;
* ``on_device=True``: the whole split is moved to the device once (as stored, e.g. ``uint8``)
  and batches are gathered there, so no data crosses the bus during training.

For evaluation use :func:`eval_batches` (no shuffle, no augmentation, keeps the last partial
batch); :func:`train_batches` builds the training iterator from a bundle.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from ...errors import KtgRuntimeError
from .bundle import Augment, DataBundle, TensorSplit, generator

Device = str | torch.device


class TensorBatches:
    """Iterate ``(x, y)`` batches of ``split`` on ``device``; see the module docstring."""

    def __init__(
        self,
        split: TensorSplit,
        batch_size: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        augment: Augment | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        device: Device = "cpu",
        seed: int = 0,
        channels_last: bool = False,
        on_device: bool = False,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if batch_size < 1:
            raise KtgRuntimeError(f"batch size must be >= 1, got {batch_size}")
        images = split.images
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise KtgRuntimeError(
                f"mean/std need {channels} values (one per channel), got {len(mean)} and {len(std)}"
            )
        self.batch_size = batch_size
        self.augment = augment if augment is not None and augment.active else None
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.device = torch.device(device)
        self.seed = seed
        self.channels_last = channels_last
        self.on_device = on_device
        self.shard = shard  # (replica, replicas): each batch's part this process trains on
        self.epoch = 0
        self._size = len(split)
        self._pin = self.device.type == "cuda" and not on_device
        if on_device:
            self._images = images.to(self.device).contiguous()
            self._labels = split.labels.to(self.device)
        else:
            self._images = images.contiguous()
            self._labels = split.labels
        # Normalisation folded into one multiply-add: x * scale + shift.
        divisor = 255.0 if images.dtype == torch.uint8 else 1.0
        std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._scale = (1.0 / (divisor * std_t)).to(self.device)
        self._shift = (-mean_t / std_t).to(self.device)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self._size // self.batch_size
        return math.ceil(self._size / self.batch_size)

    def _epoch_draws(self) -> dict[str, torch.Tensor]:
        """The epoch's randomness, drawn on the CPU in a fixed order (device independent)."""
        n = self._size
        gen = generator("batches", self.seed, self.epoch)
        draws = {"order": torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)}
        if self.augment is not None:
            span = 2 * self.augment.pad + 1
            draws["top"] = torch.randint(0, span, (n,), generator=gen)
            draws["left"] = torch.randint(0, span, (n,), generator=gen)
            if self.augment.flip:
                draws["flip"] = torch.rand(n, generator=gen) < 0.5
        # Moved once per epoch rather than per batch: a small copy from pageable memory to a
        # GPU waits for the queued work, which would stall every step. The order stays on the
        # CPU for the copy path, which gathers there.
        return {
            key: value if key == "order" and not self.on_device else value.to(self.device)
            for key, value in draws.items()
        }

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate()

    def _cut(self, i: int) -> torch.Tensor | slice:
        """The positions of batch ``i`` in the epoch's order; with replicas, this process's
        part of it (the same global batch is cut the same way on every process)."""
        start, end = i * self.batch_size, min((i + 1) * self.batch_size, self._size)
        replica, replicas = self.shard
        if replicas == 1:
            return slice(start, end)
        return torch.arange(start, end).tensor_split(replicas)[replica]

    def iterate(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches from batch ``start`` on: the same batches a full pass yields
        there (a run resumed mid-epoch continues exactly where it stopped)."""
        draws = self._epoch_draws()
        for i in range(start, len(self)):
            cut = self._cut(i)
            index = draws["order"][cut]
            x = self._images.index_select(0, index)
            y = self._labels.index_select(0, index)
            if not self.on_device and self.device.type != "cpu":
                if self._pin:
                    x, y = x.pin_memory(), y.pin_memory()
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
            if self.augment is not None:
                flip = draws["flip"][cut] if "flip" in draws else None
                x = crop_and_flip(x, self.augment.pad, draws["top"][cut], draws["left"][cut], flip)
            # x is always a fresh copy (index_select), so normalising in place is safe; two
            # in-place passes are faster on the CPU than one broadcasting addcmul.
            x = x.to(torch.float32).mul_(self._scale).add_(self._shift)
            if self.channels_last:
                # Last: per-channel broadcasting over a channels-last tensor is slow on the CPU.
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y


def crop_and_flip(
    images: torch.Tensor,
    pad: int,
    top: torch.Tensor,
    left: torch.Tensor,
    flip: torch.Tensor | None,
) -> torch.Tensor:
    """Per-sample crops and flips of a batch, as one gather of image rows.

    Sample ``b`` becomes ``crop(pad(images[b], pad), top[b], left[b], H, W)``, horizontally
    flipped where ``flip[b]``; ``top``/``left`` lie in ``[0, 2 * pad]``. Offsets and flags may
    live on the CPU or on the images' device.
    """
    batch, channels, height, width = images.shape
    device = images.device
    top, left = top.to(device), left.to(device)
    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images.contiguous()
    flat = padded.reshape(-1)
    rows, cols = height + 2 * pad, width + 2 * pad
    # Every output row is `width` consecutive values of the padded batch: gathering whole rows
    # with index_select (a copy per row) is several times faster on the CPU than indexing
    # element by element. start[b, c, i]: where row i of channel c of sample b's crop begins.
    sample_start = torch.arange(batch, device=device) * (channels * rows * cols)
    start = (
        (sample_start + top * cols + left).view(batch, 1, 1)
        + (torch.arange(channels, device=device) * (rows * cols)).view(1, channels, 1)
        + (torch.arange(height, device=device) * cols).view(1, 1, height)
    )
    if flip is not None:
        # Appending the reversed buffer makes every reversed row a forward run too: the row
        # starting at s, reversed, starts at 2n - s - width of [flat, flat reversed].
        n = flat.numel()
        flat = torch.cat([flat, flat.flip(0)])
        start = torch.where(flip.to(device).view(batch, 1, 1), 2 * n - width - start, start)
    windows = flat.as_strided((flat.numel() - width + 1, width), (1, 1))
    return windows.index_select(0, start.reshape(-1)).view(batch, channels, height, width)


def eval_batches(
    split: TensorSplit,
    batch_size: int,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    device: Device = "cpu",
    channels_last: bool = False,
    on_device: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> TensorBatches:
    """Evaluation order: every sample once, in stored order, unaugmented, last batch kept."""
    return TensorBatches(
        split,
        batch_size,
        mean=mean,
        std=std,
        augment=None,
        shuffle=False,
        drop_last=False,
        device=device,
        channels_last=channels_last,
        on_device=on_device,
        shard=shard,
    )


def train_batches(
    bundle: DataBundle,
    batch_size: int,
    *,
    seed: int,
    device: Device = "cpu",
    drop_last: bool = False,
    channels_last: bool = False,
    on_device: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> TensorBatches:
    """Shuffled, augmented (as the bundle asks) batches of the bundle's training split."""
    return TensorBatches(
        bundle.train,
        batch_size,
        mean=bundle.mean,
        std=bundle.std,
        augment=bundle.augment,
        shuffle=True,
        drop_last=drop_last,
        device=device,
        seed=seed,
        channels_last=channels_last,
        on_device=on_device,
        shard=shard,
    )
