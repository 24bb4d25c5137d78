"""CIFAR-10 and CIFAR-100, read with torchvision and held in memory as ``uint8`` tensors.

Files: the "python version" archives, extracted under the spec's ``data.root``, i.e.
``<root>/cifar-10-batches-py/`` or ``<root>/cifar-100-python/`` (torchvision's layout; it checks
every file's md5). Nothing is downloaded unless the spec says ``download: true``.

Protocol (the original KTG paper's):

* ``split: val``: a permutation of the 50,000 training images drawn from the spec's seed holds
  out ``val_size`` of them (default 10,000) as the validation set; the other 40,000 train.
* ``split: test``: train on all 50,000 training images, evaluate on the 10,000 test images.

Images are ``uint8`` ``[N, 3, 32, 32]`` (CIFAR's own channel-major layout); labels are the
fine labels (100 classes for CIFAR-100). Per-channel mean and std come from the training part
only. Augmentation (``augment: true``, the default): random 32x32 crop of the image zero-padded
by 4 pixels and random horizontal flip, as in the ResNet-on-CIFAR recipe.
"""

from __future__ import annotations

import shutil
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
)


def _read(classes: int, root: str, train: bool, download: bool) -> tuple[TensorSplit, list[str]]:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if classes == 10 else CIFAR100
    folder = Path(root).expanduser().resolve() / cls.base_folder
    if not download:
        _check_files(classes, folder, [n for n, _ in cls.train_list + cls.test_list])
    made = _missing_folders(folder.parent)  # what a failed download must not leave behind
    try:
        dataset = cls(root=root, train=train, download=download)
    except RuntimeError as err:
        # torchvision says "Dataset not found or corrupted" for a missing folder, a missing
        # file and a failed md5 check alike.
        _remove_empty(made)
        hint = (
            "the download did not produce valid files; delete the folder and try again"
            if download
            else "set `download: true` in the spec's data section to fetch it"
        )
        raise KtgRuntimeError(
            f"CIFAR-{classes} not found or corrupted: looked in {folder} for the extracted "
            f"python-version files ({err}); {hint}"
        ) from err
    except OSError as err:  # network failures while downloading (URLError is an OSError)
        _remove_all(made)
        raise KtgRuntimeError(f"could not download CIFAR-{classes} into {folder}: {err}") from err
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return TensorSplit(images, labels), list(dataset.classes)


def _check_files(classes: int, folder: Path, names: list[str]) -> None:
    """Without a download, the extracted files must be there: say which are not (before
    torchvision is asked, so that nothing is created on the way)."""
    missing = [n for n in names if not (folder / n).is_file()]
    if not missing:
        return
    what = "the folder does not exist" if not folder.is_dir() else f"missing {', '.join(missing)}"
    raise KtgRuntimeError(
        f"CIFAR-{classes} not found: looked in {folder} for the extracted python-version "
        f"files ({what}); set `download: true` in the spec's data section to fetch it, or "
        "point data.root at the folder that holds "
        f"{folder.name}/ (a relative root is read from the working directory)"
    )


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    return [p for p in [path, *path.parents] if not p.exists()]


def _remove_all(made: list[Path]) -> None:
    """Remove the folders a failed download created (a partial archive included)."""
    if made:
        shutil.rmtree(made[-1], ignore_errors=True)


def _remove_empty(made: list[Path]) -> None:
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return


def load_cifar_bundle(
    classes: int,
    *,
    root: str,
    download: bool,
    seed: int,
    split: str,
    val_size: int = 10_000,
    augment: bool = True,
) -> DataBundle:
    if classes not in (10, 100):
        raise KtgRuntimeError(f"CIFAR has 10 or 100 classes, not {classes}")
    check_split_name(split)
    name = f"CIFAR-{classes}"
    full_train, class_names = _read(classes, root, train=True, download=download)
    if split == "val":
        n = len(full_train)
        if not 0 < val_size < n:
            raise KtgRuntimeError(
                f"{name} with split: val needs 0 < val_size < {n}, got {val_size}"
            )
        order = torch.randperm(n, generator=generator("cifar-val", seed))
        # Sorted so both parts keep the files' order (and gather memory sequentially).
        val_idx = order[:val_size].sort().values
        train_idx = order[val_size:].sort().values
        train, evaluation = full_train.subset(train_idx), full_train.subset(val_idx)
        description = f"{name}: train {len(train)} / val {len(evaluation)} (seed {seed})"
    else:
        train = full_train
        evaluation, _ = _read(classes, root, train=False, download=download)
        description = f"{name}: train {len(train)} / test {len(evaluation)}"
    mean, std = channel_stats(train.images)
    return DataBundle(
        train=train,
        eval=evaluation,
        num_classes=classes,
        input_shape=(3, 32, 32),
        mean=mean,
        std=std,
        augment=Augment(pad=4, flip=True) if augment else None,
        eval_name=split,
        description=description,
        class_names=class_names,
    )
