"""Datasets, registered by name. Builders import torch only when called.

A builder takes ``root``, ``download``, ``seed`` and ``split`` from the spec's ``data:`` section
(plus its own arguments) and returns a :class:`ktg_dsl.components.data.bundle.DataBundle`.
``info=`` (``DatasetMeta``) tells the class count and input shape *without* loading anything, so
that ``ktg validate`` can check a graph against the data. A builder that would share its name
with a submodule (``digits``) is registered under an explicit name, so that it never shadows the
submodule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ...registry import DATASETS
from .memory import check_synthetic
from .sizes import per_class_train_size


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int | None  # None: only known once loaded
    input_shape: tuple[int, int, int] | None  # (C, H, W)


PosInt = Annotated[int, Field(ge=1)]


# the digits' training part (without val with split: val, with it with split: test): its size,
# and the images of its smallest class, the most train_per_class can take
DIGITS_TRAIN = {"val": (1151, 111), "test": (1438, 139)}


@DATASETS.register(
    "digits",
    info=lambda args, root: DatasetInfo(10, (1, 8, 8)),
    train_size=per_class_train_size(DIGITS_TRAIN),
)
def digits_data(
    root: str,
    download: bool,
    seed: int,
    split: str,
    train_per_class: Annotated[int, Field(ge=1, le=1000)] | None = None,
    label_noise: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0,
) -> Any:
    """The 1,797 8x8 handwritten digits bundled with scikit-learn (UCI optdigits test set),
    loaded offline. A fixed 20% test part (stratified, independent of the spec's seed); the
    rest splits 80/20 into train/val from the seed. For a harder protocol, training uses only
    ``train_per_class`` images per class (at most 111 with ``split: val``, 139 with ``split:
    test``) and/or flips a ``label_noise`` fraction of the training labels to another class,
    both from the seed; val and test are never touched."""
    from .digits import load_digits_bundle

    return load_digits_bundle(
        seed=seed, split=split, train_per_class=train_per_class, label_noise=label_noise
    )


def _register_cifar(classes: int) -> None:
    def cifar(
        root: str,
        download: bool,
        seed: int,
        split: str,
        val_size: Annotated[int, Field(ge=0, le=25000)] = 10000,
        augment: bool = True,
    ) -> Any:
        from .cifar import load_cifar_bundle

        return load_cifar_bundle(
            classes,
            root=root,
            download=download,
            seed=seed,
            split=split,
            val_size=val_size,
            augment=augment,
        )

    cifar.__doc__ = (
        f"CIFAR-{classes} through torchvision. ``split: val``: train 40,000 / val 10,000 from "
        "the seed; ``split: test``: train on all 50,000, evaluate on the 10,000 test images."
    )
    info = DatasetInfo(classes, (3, 32, 32))
    DATASETS.register(f"cifar{classes}", info=lambda args, root: info)(cifar)


for _classes in (10, 100):
    _register_cifar(_classes)


def _imagefolder_info(args: dict[str, Any], root: str) -> DatasetInfo:
    train = Path(root) / "train"
    size = int(args.get("image_size", 32))
    classes = None
    if train.is_dir():
        classes = sum(1 for p in train.iterdir() if p.is_dir()) or None
    return DatasetInfo(classes, (3, size, size))


@DATASETS.register("imagefolder", info=_imagefolder_info)
def imagefolder_data(
    root: str,
    download: bool,
    seed: int,
    split: str,
    image_size: Annotated[int, Field(ge=8, le=1024)] = 32,
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2,
    augment: bool = True,
) -> Any:
    """Your own images: ``root/train/<class>/*.png|jpg`` (and optionally ``root/val/`` and
    ``root/test/`` with the same class folders), resized to ``image_size``. Without ``val/``,
    ``val_fraction`` of train is held out from the seed."""
    from .imagefolder import load_imagefolder_bundle

    return load_imagefolder_bundle(
        root=root,
        seed=seed,
        split=split,
        image_size=image_size,
        val_fraction=val_fraction,
        augment=augment,
    )


@DATASETS.register(
    "synthetic",
    check=check_synthetic,
    train_size=lambda args, split: int(args.get("train_size", 1024)),
    info=lambda args, root: DatasetInfo(
        int(args.get("num_classes", 10)),
        (
            int(args.get("channels", 3)),
            int(args.get("image_size", 32)),
            int(args.get("image_size", 32)),
        ),
    ),
)
def synthetic_data(
    root: str,
    download: bool,
    seed: int,
    split: str,
    num_classes: Annotated[int, Field(ge=1, le=100_000)] = 10,
    image_size: Annotated[int, Field(ge=1, le=512)] = 32,
    channels: Annotated[int, Field(ge=1, le=16)] = 3,
    train_size: Annotated[int, Field(ge=1, le=10_000_000)] = 1024,
    val_size: Annotated[int, Field(ge=1, le=10_000_000)] = 256,
    noise: Annotated[float, Field(ge=0.0)] = 1.0,
    augment: bool = False,
) -> Any:
    """Random images around one fixed prototype per class (learnable, no files): for tests
    and benchmarks."""
    from .synthetic import load_synthetic_bundle

    return load_synthetic_bundle(
        seed=seed,
        split=split,
        num_classes=num_classes,
        image_size=image_size,
        channels=channels,
        train_size=train_size,
        val_size=val_size,
        noise=noise,
        augment=augment,
    )


# registered after DatasetInfo exists (they use it): torch-free like the ones above
from . import torchvision_sets  # noqa: E402, F401
