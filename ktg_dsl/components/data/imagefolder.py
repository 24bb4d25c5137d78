"""Your own images, one folder per class, decoded once into memory.

Layout under the spec's ``data.root``::

    train/<class>/*.png|jpg|...   required
    val/<class>/...               optional: the validation set
    test/<class>/...              needed for ``split: test``

Classes are the sub-folder names of ``train/``, sorted (label 0 is the first name); ``val/`` and
``test/`` must have exactly the same class folders (a class folder may be empty there). Files
are found by torchvision's ``ImageFolder`` (its image extensions), opened with PIL, converted
to RGB and resized to ``image_size`` x ``image_size`` (bilinear, aspect ratio not kept), then
stored as ``uint8`` ``[N, 3, image_size, image_size]``: decoding happens once, when the bundle
is built, never during training. Datasets whose decoded images would exceed 8 GiB are refused
(lower ``image_size`` or use a subset).

Splits:

* ``split: val``: evaluate on ``val/`` if it exists; otherwise ``val_fraction`` of every class
  of ``train/`` (rounded, drawn from the spec's seed, at least one image of every class kept
  for training) is held out as validation.
* ``split: test``: train on ``train/`` plus ``val/`` (if present), evaluate on ``test/``.

Normalisation statistics come from the training part only. Augmentation (``augment: true``):
random crop of the image zero-padded by ``image_size // 8`` pixels, random horizontal flip.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ...errors import KtgRuntimeError
from .bundle import (
    Augment,
    DataBundle,
    TensorSplit,
    channel_stats,
    check_split_name,
    generator,
    stratified_split,
)

MAX_BYTES = 8 * 2**30


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def _check_same_classes(root: Path, part: str, classes: list[str]) -> None:
    found = _class_folders(root / part)
    if found == classes:
        return
    missing = sorted(set(classes) - set(found))
    extra = sorted(set(found) - set(classes))
    details = []
    if missing:
        details.append(f"missing in {part}/: {', '.join(missing)}")
    if extra:
        details.append(f"not in train/: {', '.join(extra)}")
    raise KtgRuntimeError(
        f"the class folders of {root / part} must equal those of "
        f"{root / 'train'} ({'; '.join(details)})"
    )


def _samples(folder: Path, allow_empty: bool) -> list[tuple[str, int]]:
    from torchvision.datasets import ImageFolder

    try:
        return list(ImageFolder(str(folder), allow_empty=allow_empty).samples)
    except FileNotFoundError as err:  # no class folder, or a class without any image
        raise KtgRuntimeError(f"no usable images in {folder}: {err}") from err


def _decode(samples: list[tuple[str, int]], size: int) -> TensorSplit:
    import warnings

    from PIL import Image

    images = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)

    def load(i: int) -> None:
        images[i] = _load_image(samples[i][0], size)

    # PIL releases the GIL while decoding and resizing, so threads do run in parallel. An image
    # over Pillow's pixel limit is refused, not decoded: its warning is an error here.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(load, range(len(samples))))
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return TensorSplit(images, labels)


def _load_image(path: str, size: int) -> torch.Tensor:
    """One image as uint8 [3, size, size]; a KtgRuntimeError naming the file if it cannot be
    read (not an image, damaged, too many pixels, not a regular file)."""
    import numpy as np
    from PIL import Image

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # opening a FIFO would wait forever
            raise KtgRuntimeError(f"cannot read image {path}: it is not a regular file")
        with Image.open(path) as img:
            limit = Image.MAX_IMAGE_PIXELS  # (Pillow only warns up to twice it)
            if limit is not None and img.width * img.height > limit:
                raise Image.DecompressionBombError(f"{img.width}x{img.height}")
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise KtgRuntimeError(
            f"cannot read image {path}: it has more pixels than Pillow decodes safely "
            f"({Image.MAX_IMAGE_PIXELS:,}); it may be a decompression bomb. Shrink the image "
            "or remove it"
        ) from None
    except KtgRuntimeError:
        raise
    except Exception as err:  # not an image, truncated, an unsupported mode: PIL's own words
        text = str(err).strip() or type(err).__name__
        raise KtgRuntimeError(f"cannot read image {path}: {text}") from None
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)


def _folders(base: Path, split: str) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """The class names and the samples of each part that exists (train, val, test)."""
    if not (base / "train").is_dir():
        raise KtgRuntimeError(
            f"imagefolder: no train/ folder in {base} (expected {base / 'train'}/<class>/<images>)"
        )
    classes = _class_folders(base / "train")
    if not classes:
        raise KtgRuntimeError(f"imagefolder: {base / 'train'} has no class folders")
    if split == "test" and not (base / "test").is_dir():
        raise KtgRuntimeError(
            f"imagefolder: split: test needs a test/ folder in {base} "
            f"(expected {base / 'test'}/<class>/<images>)"
        )
    for part in ("val", "test"):
        if (base / part).is_dir() and (part == "val" or split == "test"):
            _check_same_classes(base, part, classes)
    parts = {"train": _samples(base / "train", allow_empty=False)}
    if (base / "val").is_dir():
        parts["val"] = _samples(base / "val", allow_empty=True)
    if split == "test":
        parts["test"] = _samples(base / "test", allow_empty=True)
    return classes, parts


def _check_memory(parts: dict[str, list[tuple[str, int]]], image_size: int) -> None:
    count = sum(len(s) for s in parts.values())
    needed = count * 3 * image_size * image_size
    if needed > MAX_BYTES:
        raise KtgRuntimeError(
            f"imagefolder: {count} images at {image_size}x{image_size} need "
            f"{needed / 2**30:.1f} GiB decoded, more than the 8 GiB ktg keeps in memory; "
            "lower image_size or use fewer images"
        )


def _train_and_eval(
    decoded: dict[str, TensorSplit], base: Path, split: str, seed: int, val_fraction: float
) -> tuple[TensorSplit, TensorSplit, str]:
    """The training and evaluation parts, and where the evaluation part came from."""
    if split == "test":
        train = TensorSplit.concat([decoded[p] for p in ("train", "val") if p in decoded])
        return train, decoded["test"], "test/"
    if "val" in decoded:
        return decoded["train"], decoded["val"], "val/"
    train_idx, val_idx = stratified_split(
        decoded["train"].labels, val_fraction, generator("imagefolder-val", seed)
    )
    if val_idx.numel() == 0:
        raise KtgRuntimeError(
            f"imagefolder: val_fraction {val_fraction} of {len(decoded['train'])} training "
            f"images holds out no validation image; raise val_fraction or add {base}/val/"
        )
    return (
        decoded["train"].subset(train_idx),
        decoded["train"].subset(val_idx),
        f"{val_fraction:g} of train/, seed {seed}",
    )


def load_imagefolder_bundle(
    root: str,
    *,
    seed: int,
    split: str,
    image_size: int = 32,
    val_fraction: float = 0.2,
    augment: bool = True,
) -> DataBundle:
    check_split_name(split)
    base = Path(root).expanduser().resolve()
    classes, parts = _folders(base, split)
    _check_memory(parts, image_size)
    decoded = {name: _decode(samples, image_size) for name, samples in parts.items()}
    train, evaluation, origin = _train_and_eval(decoded, base, split, seed, val_fraction)
    mean, std = channel_stats(train.images)
    return DataBundle(
        train=train,
        eval=evaluation,
        num_classes=len(classes),
        input_shape=(3, image_size, image_size),
        mean=mean,
        std=std,
        augment=Augment(pad=image_size // 8, flip=True) if augment else None,
        eval_name=split,
        description=(
            f"imagefolder {base}: {len(classes)} classes, {image_size}x{image_size}, "
            f"train {len(train)} / {split} {len(evaluation)} ({origin})"
        ),
        class_names=classes,
    )
