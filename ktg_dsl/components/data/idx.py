"""MNIST, Fashion-MNIST and KMNIST: 70,000 grey 28x28 images in IDX files, 10 classes, read
with torchvision's own IDX reader and held in memory as ``uint8`` ``[N, 1, 28, 28]``.

Files: the four IDX files (plain or ``.gz``), found as :mod:`ktg_dsl.components.data.files`
says: under ``data.root`` or, without them there, where a system package put them (Debian's
``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist/``). ``download: true``
fetches missing files with torchvision into ``<root>/<TorchvisionClass>/raw/``.

Protocol:

* ``split: val``: a sixth of every class of the 60,000 training images, drawn from the spec's
  seed, is held out as the validation set (10,000 images, 1,000 per class for Fashion-MNIST);
  the rest trains (50,000);
* ``split: test``: train on all 60,000 training images, evaluate on the 10,000 test images;
* ``train_per_class`` and ``label_noise`` on the training part only
  (:mod:`ktg_dsl.components.data.protocol`).

Per-channel mean and std come from the (kept) training images. Augmentation (``augment:
true``): a random 28x28 crop of the image zero-padded by 2 pixels, and for Fashion-MNIST a
random horizontal flip (a mirrored shirt is a shirt; a mirrored digit or kana is not).
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import torch

from ...errors import KtgRuntimeError
from . import files
from .bundle import DataBundle, TensorSplit, check_split_name
from .cifar import _missing_folders, _remove_all
from .vision import make_bundle

VAL_FRACTION = 1 / 6
PAD = 2


def read_idx(images: Path, labels: Path) -> TensorSplit:
    """One part from its image and label files (``.gz`` decompressed on the way)."""
    with tempfile.TemporaryDirectory(prefix="ktg-idx-") as tmp:
        data = _read(images, Path(tmp), "images")
        targets = _read(labels, Path(tmp), "labels")
    if data.shape[0] != targets.shape[0]:
        raise KtgRuntimeError(
            f"{images} holds {data.shape[0]} images but {labels} holds {targets.shape[0]} labels"
        )
    return TensorSplit(data.unsqueeze(1).contiguous(), targets.to(torch.int64))


def _read(path: Path, tmp: Path, what: str) -> torch.Tensor:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    reader = read_image_file if what == "images" else read_label_file
    plain = path
    try:
        if path.suffix == ".gz":
            plain = tmp / path.stem
            with gzip.open(path, "rb") as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        return reader(str(plain))
    # torchvision checks the IDX header with asserts and dtype/shape checks (a size that does
    # not fit the data fails in torch.view: RuntimeError); a damaged .gz
    # raises OSError or EOFError
    except (
        AssertionError,
        TypeError,
        ValueError,
        KeyError,
        RuntimeError,
        OSError,
        EOFError,
    ) as err:
        text = str(err) or type(err).__name__
        raise KtgRuntimeError(f"cannot read {path} as IDX {what}: {text}") from None


def _download(s: files.IdxSet, root: str) -> None:
    import torchvision.datasets as tvd

    folder = Path(root).expanduser().resolve()
    made = _missing_folders(folder)
    try:
        getattr(tvd, s.torchvision)(root=str(folder), train=True, download=True)
    except (RuntimeError, OSError) as err:  # every mirror failed / no network
        _remove_all(made)
        raise KtgRuntimeError(
            f"could not download {s.title} into {folder / s.torchvision / 'raw'}: {err}"
        ) from None


def _files(s: files.IdxSet, root: str, download: bool, split: str) -> dict[str, tuple[Path, Path]]:
    """The image and label files of each part ``split`` needs (downloaded if asked)."""
    found = files.locate(s, root, split)
    if found is None and download:
        _download(s, root)
        found = files.locate(s, root, split)
    if found is None:
        message, hint = files.missing(s, root, split)
        raise KtgRuntimeError(f"{message}; {hint}")
    return found


def load_idx_bundle(
    name: str,
    *,
    root: str,
    download: bool,
    seed: int,
    split: str,
    train_per_class: int | None = None,
    label_noise: float = 0.0,
    augment: bool = True,
    eval_per_class: int | None = None,
) -> DataBundle:
    import torchvision.datasets as tvd

    check_split_name(split)
    s = files.IDX_SETS[name]
    found = _files(s, root, download, split)
    names = [str(c) for c in getattr(tvd, s.torchvision).classes]
    return make_bundle(
        name,
        f"{s.title} ({found['train'][0].parent})",
        lambda part: (read_idx(*found[part]), names),
        seed=seed,
        split=split,
        val_fraction=VAL_FRACTION,
        image_size=None,
        augment=augment,
        flip=s.flip,
        pad=PAD,
        train_per_class=train_per_class,
        label_noise=label_noise,
        eval_per_class=eval_per_class,
    )
