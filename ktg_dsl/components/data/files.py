"""Where the files of the IDX datasets (MNIST, Fashion-MNIST, KMNIST) are found on disk, and
what to tell a user when they are not. Torch-free: ``ktg validate`` asks it before anything
is loaded.

Folders searched, in order, for the four IDX files (each plain or gzipped)::

    <data.root>/<TorchvisionClass>/raw/   where torchvision's download puts them
    <data.root>/<folder>/                 e.g. data/fashion-mnist/
    <data.root>/
    <system>/<folder>/                    e.g. /usr/share/datasets/fashion-mnist/ (Debian's
                                          dataset-fashion-mnist package)

``<system>`` is every folder of ``$KTG_DATASETS_DIRS`` (separated like ``$PATH``), or
``/usr/share/datasets`` and ``/usr/local/share/datasets`` when it is not set. The first folder
that holds every file the split needs is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APT = "dataset-fashion-mnist"  # Debian's package of Fashion-MNIST
SYSTEM_DIRS = ("/usr/share/datasets", "/usr/local/share/datasets")

# the files of each part, as every IDX dataset names them
PARTS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class IdxSet:
    """One dataset of 28x28 grey images in IDX files, 10 classes."""

    name: str  # ktg's name: fashion_mnist
    title: str  # for messages: Fashion-MNIST
    torchvision: str  # its torchvision.datasets class: FashionMNIST
    folder: str  # the folder it is usually unpacked to (Debian's too): fashion-mnist
    flip: bool  # whether a mirrored image is still an image of its class
    apt: str | None = None  # the Debian/Ubuntu package that installs it


IDX_SETS = {
    s.name: s
    for s in (
        IdxSet("fashion_mnist", "Fashion-MNIST", "FashionMNIST", "fashion-mnist", True, APT),
        IdxSet("mnist", "MNIST", "MNIST", "mnist", False),
        IdxSet("kmnist", "KMNIST", "KMNIST", "kmnist", False),
    )
}


def system_dirs() -> list[Path]:
    value = os.environ.get("KTG_DATASETS_DIRS")
    if value is None:
        return [Path(d) for d in SYSTEM_DIRS]
    return [Path(d) for d in value.split(os.pathsep) if d]


def candidates(s: IdxSet, root: str) -> list[Path]:
    base = Path(root).expanduser()
    return [
        base / s.torchvision / "raw",
        base / s.folder,
        base,
        *(d / s.folder for d in system_dirs()),
    ]


def parts_for(split: str) -> tuple[str, ...]:
    return ("train",) if split == "val" else ("train", "test")


def _file(folder: Path, name: str) -> Path | None:
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def locate(s: IdxSet, root: str, split: str) -> dict[str, tuple[Path, Path]] | None:
    """``{part: (images, labels)}`` from the first folder holding every file ``split`` needs,
    or None."""
    for folder in candidates(s, root):
        found = {}
        for part in parts_for(split):
            images, labels = (_file(folder, n) for n in PARTS[part])
            if images is None or labels is None:
                break
            found[part] = (images, labels)
        else:
            return found
    return None


def missing(s: IdxSet, root: str, split: str) -> tuple[str, str]:
    """What is missing, and how to get it."""
    names = ", ".join(f"{n}[.gz]" for part in parts_for(split) for n in PARTS[part])
    where = ", ".join(str(p) for p in candidates(s, root))
    message = f"{s.title} not found: looked for {names} in {where}"
    ways = []
    if s.apt:
        ways.append(f"install it with `sudo apt-get install {s.apt}` on Debian or Ubuntu")
    ways.append(
        "set `download: true` in the spec's data section to fetch it with torchvision "
        "(needs a network)"
    )
    ways.append("or point data.root at the folder that holds the files (docs/install.md)")
    return message, "; ".join(ways)


def check_present(s: IdxSet) -> Any:
    """A registration's ``files`` hook: ``(args, root, download, split)`` raises
    ``ValueError(argument, message, hint)`` when the files are neither there nor to be
    downloaded."""

    def files(args: dict[str, Any], root: str, download: bool, split: str) -> None:
        if download or locate(s, root, split) is not None:
            return
        message, hint = missing(s, root, split)
        raise ValueError(None, message, hint)

    return files
