"""More torchvision datasets, read by torchvision's own classes and held in memory as ``uint8``
``[N, C, H, W]``: SVHN, STL-10, and any ``torchvision.datasets`` class by name.

Files, under the spec's ``data.root`` (torchvision's layouts; ``download: true`` fetches them
with torchvision):

* SVHN: ``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB files, read by torchvision through
  scipy);
* STL-10: ``stl10_binary/{train,test}_{X,y}.bin`` (the labelled 5,000 + 8,000 images; the
  unlabelled 100,000 are not needed).

torchvision checks these files' md5 sums, which would refuse any subset of them: ktg checks
that they are there and lets the readers refuse a damaged one.

Protocol: ``split: val`` holds out ``val_fraction`` of every class of the training images,
drawn from the spec's seed; ``split: test`` trains on all training images and evaluates on the
test images; ``train_per_class`` and ``label_noise`` act on the training part only. Images can
be shrunk to ``image_size`` (antialiased; STL-10's 96x96 is heavy for small CNNs).
Augmentation: a random crop of the image zero-padded by ``image_size // 8``, and a random
horizontal flip where a mirrored image keeps its class (STL-10's animals and vehicles; not
SVHN's digits).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
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
from .protocol import apply_protocol, eval_subset


def _exists(folder: Path, names: list[str], title: str, download: bool) -> None:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and not download:
        raise KtgRuntimeError(
            f"{title} not found: looked in {folder} for {', '.join(missing)}; set `download: "
            "true` in the spec's data section to fetch it with torchvision (needs a network), "
            "or point data.root at the folder that holds the files"
        )


def _make(title: str, build: Callable[[], Any]) -> Any:
    """A torchvision dataset, its failures in ktg's words."""
    try:
        return build()
    except (RuntimeError, OSError, ValueError, TypeError, KeyError) as err:
        raise KtgRuntimeError(f"cannot read {title}: {err}") from None


def read_svhn(root: str, part: str, download: bool) -> tuple[TensorSplit, list[str]]:
    from torchvision.datasets import SVHN

    class Present(SVHN):
        def _check_integrity(self) -> bool:
            return Path(self.root, self.filename).is_file()

    folder = Path(root).expanduser()
    _exists(folder, [SVHN.split_list[part][1]], "SVHN", download)
    ds = _make("SVHN", lambda: Present(str(folder), split=part, download=download))
    return _split(ds.data, ds.labels, "SVHN"), [str(d) for d in range(10)]


def read_stl10(root: str, part: str, download: bool) -> tuple[TensorSplit, list[str]]:
    from torchvision.datasets import STL10

    labelled = [n for n, _ in STL10.train_list[:2] + STL10.test_list]

    class Present(STL10):
        def _check_integrity(self) -> bool:
            return all(Path(self.root, self.base_folder, n).is_file() for n in labelled)

    folder = Path(root).expanduser()
    _exists(folder / STL10.base_folder, labelled, "STL-10", download)
    ds = _make("STL-10", lambda: Present(str(folder), split=part, download=download))
    names = list(getattr(ds, "classes", [])) or [str(c) for c in range(10)]
    return _split(ds.data, ds.labels, "STL-10"), names


def _split(data: Any, labels: Any, title: str) -> TensorSplit:
    images = torch.from_numpy(np.ascontiguousarray(data))
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(-1))
    if images.dim() != 4 or images.shape[0] != targets.shape[0]:
        raise KtgRuntimeError(f"{title}: {list(images.shape)} images for {targets.shape[0]} labels")
    return TensorSplit(images, targets)


def read_any(
    name: str, options: dict[str, Any], root: str, part: str, download: bool, size: int | None
) -> tuple[TensorSplit, list[str] | None]:
    """Any torchvision dataset class by name, one part, every sample decoded to ``uint8``
    (grey stays one channel, colour becomes RGB; PIL images resized to ``size`` if given)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, name)
    kwargs = {**options, **part_argument(cls, part), "download": download}
    if "download" not in inspect.signature(cls).parameters:
        kwargs.pop("download")
    ds = _make(name, lambda: cls(root=str(Path(root).expanduser()), **kwargs))
    images, labels = [], []
    for i in range(len(ds)):
        image, label = ds[i]
        images.append(_pixels(image, size))
        labels.append(int(label))
    if not images:
        raise KtgRuntimeError(f"torchvision {name} ({part}) has no images")
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) > 1:
        raise KtgRuntimeError(
            f"torchvision {name}: images of {len(shapes)} sizes ({sorted(shapes)[:3]}...); "
            "set image_size to resize them all"
        )
    names = getattr(ds, "classes", None)
    return TensorSplit(torch.stack(images), torch.tensor(labels)), names


def _pixels(image: Any, size: int | None) -> torch.Tensor:
    """A PIL image (or an array) as ``uint8`` ``[C, H, W]``."""
    from PIL import Image

    if isinstance(image, Image.Image):
        image = image.convert("L" if image.mode in ("1", "L", "I", "F") else "RGB")
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] in (1, 3) and array.shape[0] not in (1, 3):
        array = array.transpose(2, 0, 1)
    return torch.from_numpy(np.array(array, dtype=np.uint8, order="C"))  # a writable copy


def part_argument(cls: Any, part: str) -> dict[str, Any]:
    """How ``cls`` selects its training or test part: ``train=True|False`` (its own or a
    parent's, as EMNIST passes it on to MNIST) or ``split="train"|"test"``."""
    inits = [inspect.signature(k) for k in cls.__mro__ if "__init__" in vars(k)]
    if any("train" in sig.parameters for sig in inits):
        return {"train": part == "train"}
    if "split" in inspect.signature(cls).parameters:
        return {"split": part}
    raise KtgRuntimeError(
        f"torchvision {cls.__name__} selects no training and test part by `train` or `split`"
    )


def resize(split: TensorSplit, size: int | None) -> TensorSplit:
    if size is None or tuple(split.images.shape[2:]) == (size, size):
        return split
    import torch.nn.functional as F

    parts = []
    for start in range(0, len(split), 1024):  # a chunk at a time: no float copy of it all
        chunk = split.images[start : start + 1024].float()
        small = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
        parts.append(small.round_().clamp_(0, 255).to(torch.uint8))
    return TensorSplit(torch.cat(parts), split.labels)


def shape_pad(split: TensorSplit, pad: int | None) -> int:
    """The crop's padding: ``pad``, or an eighth of the image's width (4 for 32x32)."""
    return pad if pad is not None else int(split.images.shape[-1]) // 8


def make_bundle(
    name: str,
    title: str,
    read: Callable[[str], tuple[TensorSplit, list[str] | None]],
    *,
    seed: int,
    split: str,
    val_fraction: float,
    image_size: int | None,
    augment: bool,
    flip: bool,
    pad: int | None = None,
    train_per_class: int | None = None,
    label_noise: float = 0.0,
    eval_per_class: int | None = None,
) -> DataBundle:
    """The bundle of a dataset whose ``read(part)`` gives its training or test part and its
    class names (``name``: the random streams' tag, ``title``: the log line's words)."""
    check_split_name(split)
    full, names = read("train")
    full = resize(full, image_size)
    if split == "test":
        train, evaluation = full, resize(read("test")[0], image_size)
    else:
        gen = generator(f"{name}-val", seed)
        train_idx, val_idx = stratified_split(full.labels, val_fraction, gen)
        train, evaluation = full.subset(train_idx), full.subset(val_idx)
    classes = len(names) if names else int(full.labels.max()) + 1
    evaluation = eval_subset(evaluation, eval_per_class, name, classes, split)
    pad = shape_pad(full, pad)
    train, protocol = apply_protocol(
        train,
        name=name,
        num_classes=classes,
        seed=seed,
        split=split,
        train_per_class=train_per_class,
        label_noise=label_noise,
    )
    mean, std = channel_stats(train.images)
    shape = tuple(train.images.shape[1:])
    return DataBundle(
        train=train,
        eval=evaluation,
        num_classes=classes,
        input_shape=(shape[0], shape[1], shape[2]),
        mean=mean,
        std=std,
        augment=Augment(pad=pad, flip=flip) if augment else None,
        eval_name=split,
        description=(
            f"{title}: train {len(train)} / {split} {len(evaluation)}"
            + (f" (seed {seed})" if split == "val" or protocol else "")
            + (f"; training part: {', '.join(protocol)}" if protocol else "")
        ),
        class_names=[str(n) for n in names] if names and len(names) == classes else None,
    )
