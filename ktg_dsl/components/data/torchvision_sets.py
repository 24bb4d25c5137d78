"""The torchvision datasets ktg registers besides CIFAR: the IDX sets (``mnist``,
``fashion_mnist``, ``kmnist``), ``svhn``, ``stl10``, and ``torchvision``, any class of
``torchvision.datasets`` by name. Torch-free until a builder is called, except the generic
one's check, which asks torchvision for the class's signature."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from pydantic import Field

from ...registry import DATASETS
from . import DatasetInfo
from .files import IDX_SETS, IdxSet, check_present
from .sizes import per_class_train_size

PerClass = Annotated[int, Field(ge=1, le=100_000)] | None
Noise = Annotated[float, Field(ge=0.0, lt=1.0)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
Size = Annotated[int, Field(ge=8, le=512)] | None

# the training part of each IDX set per split: (size, images of its smallest class); val
# holds out a sixth of every class (MNIST's classes hold 5,421..6,742 training images)
IDX_TRAIN = {
    "fashion_mnist": {"val": (50000, 5000), "test": (60000, 6000)},
    "kmnist": {"val": (50000, 5000), "test": (60000, 6000)},
    "mnist": {"val": (49999, 4517), "test": (60000, 5421)},
}


def _register_idx(s: IdxSet) -> None:
    def idx_data(
        root: str,
        download: bool,
        seed: int,
        split: str,
        train_per_class: PerClass = None,
        label_noise: Noise = 0.0,
        augment: bool = True,
        eval_per_class: Annotated[int, Field(ge=1, le=1000)] | None = None,
    ) -> Any:
        from .idx import load_idx_bundle

        return load_idx_bundle(
            s.name,
            root=root,
            download=download,
            seed=seed,
            split=split,
            train_per_class=train_per_class,
            label_noise=label_noise,
            augment=augment,
            eval_per_class=eval_per_class,
        )

    where = f"; Debian/Ubuntu: `apt-get install {s.apt}`" if s.apt else ""
    idx_data.__doc__ = (
        f"{s.title}: 70,000 grey 28x28 images, 10 classes, from its IDX files (plain or .gz) "
        f"under data.root or the system's dataset folders{where}; `download: true` fetches "
        "them with torchvision. ``split: val``: a sixth of every class of the 60,000 training "
        "images is held out from the seed; ``split: test``: train on 60,000, test on 10,000. "
        "``train_per_class`` and ``label_noise`` act on the training part only; ``augment``: "
        f"random crop with 2 pixels of padding{', random flip' if s.flip else ''}. "
        "``eval_per_class``: evaluate on this many images per class of val or test, the same "
        "for every spec and seed (a CPU budget's choice)."
    )
    DATASETS.register(
        s.name,
        info=lambda args, root: DatasetInfo(10, (1, 28, 28)),
        train_size=per_class_train_size(IDX_TRAIN[s.name]),
        files=check_present(s),
    )(idx_data)


for _set in IDX_SETS.values():
    _register_idx(_set)


def _register_colour(name: str, title: str, native: int, flip: bool, doc: str) -> None:
    """SVHN or STL-10: 10 classes of ``native``-pixel colour images, read by the reader of
    the same name in :mod:`.vision` (``read_svhn``, ``read_stl10``)."""

    def colour_data(
        root: str,
        download: bool,
        seed: int,
        split: str,
        val_fraction: Fraction = 0.2,
        image_size: Size = None,
        train_per_class: PerClass = None,
        label_noise: Noise = 0.0,
        augment: bool = True,
    ) -> Any:
        from . import vision

        read = getattr(vision, f"read_{name}")
        return vision.make_bundle(
            name,
            title,
            lambda part: read(root, part, download),
            seed=seed,
            split=split,
            val_fraction=val_fraction,
            image_size=image_size,
            augment=augment,
            flip=flip,
            train_per_class=train_per_class,
            label_noise=label_noise,
        )

    def info(args: dict[str, Any], root: str) -> DatasetInfo:
        size = int(args.get("image_size") or native)
        return DatasetInfo(10, (3, size, size))

    colour_data.__doc__ = doc
    DATASETS.register(name, info=info)(colour_data)


_register_colour(
    "svhn",
    "SVHN",
    32,
    False,
    """SVHN (Street View House Numbers, 32x32 colour digits, 10 classes; digit 0 is label 0)
    from torchvision's ``train_32x32.mat`` and ``test_32x32.mat`` in data.root. ``split:
    val`` holds out ``val_fraction`` of every class of the 73,257 training images from the
    seed; ``split: test`` trains on them all and tests on 26,032. ``augment``: random crop
    with padding (no flip: a mirrored digit is not a digit).""",
)
_register_colour(
    "stl10",
    "STL-10",
    96,
    True,
    """STL-10's labelled images (96x96 colour, 10 classes: 5,000 training, 8,000 test) from
    torchvision's ``stl10_binary/`` in data.root, shrunk to ``image_size`` if given. ``split:
    val`` holds out ``val_fraction`` of every class of the training images from the seed.
    ``augment``: random crop with padding and random flip.""",
)


RESERVED = ("root", "download", "transform", "target_transform", "transforms")


def check_torchvision(args: dict[str, Any]) -> None:
    """The registration's ``check`` hook: ``name`` is a dataset class of torchvision, and
    ``options`` fit its signature (ktg sets the root and the part itself)."""
    import torchvision.datasets as tvd
    from torchvision.datasets import VisionDataset

    from ...errors import KtgRuntimeError
    from .vision import part_argument

    name, options = args["name"], args.get("options") or {}
    cls = getattr(tvd, name, None) if name in tvd.__all__ else None
    if not (inspect.isclass(cls) and issubclass(cls, VisionDataset)):
        raise ValueError(f"torchvision.datasets has no dataset class '{name}'")
    try:
        part = part_argument(cls, "train")
    except KtgRuntimeError as err:
        raise ValueError(str(err)) from None
    taken = sorted(set(options) & {*RESERVED, *part})
    if taken:
        raise ValueError(f"options of {name} may not set {', '.join(taken)}: ktg sets them")
    try:
        inspect.signature(cls).bind(root="", **part, **options)
    except TypeError as err:
        raise ValueError(f"options do not fit torchvision.datasets.{name}: {err}") from None


@DATASETS.register(
    "torchvision",
    check=check_torchvision,
    info=lambda args, root: DatasetInfo(None, None),
)
def torchvision_data(
    root: str,
    download: bool,
    seed: int,
    split: str,
    name: str,
    options: dict[str, Any] | None = None,
    image_size: Size = None,
    val_fraction: Fraction = 0.2,
    train_per_class: PerClass = None,
    label_noise: Noise = 0.0,
    augment: bool = False,
    flip: bool = False,
) -> Any:
    """Any dataset class of ``torchvision.datasets`` by ``name`` (e.g. EMNIST, QMNIST, USPS),
    built with ``options`` (checked against its signature) and its training or test part
    chosen by its ``train`` or ``split`` argument; every sample is decoded once into memory
    (shrunk to ``image_size`` if given). ``split: val`` holds out ``val_fraction`` of every
    class of the training part from the seed. ``augment``: random crop with padding, and a
    random flip with ``flip``."""
    from .vision import make_bundle, read_any

    return make_bundle(
        f"torchvision-{name}",
        f"torchvision {name}",
        lambda part: read_any(name, options or {}, root, part, download, image_size),
        seed=seed,
        split=split,
        val_fraction=val_fraction,
        image_size=image_size,
        augment=augment,
        flip=flip,
        train_per_class=train_per_class,
        label_noise=label_noise,
    )
