"""Small dataset files in the real on-disk formats, written by the tests: IDX (MNIST,
Fashion-MNIST, KMNIST; plain or gzipped), SVHN's MATLAB files and STL-10's binaries."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: two zero bytes, type 0x08, the rank, big-endian sizes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def idx_part(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` random 28x28 images of each of 10 classes, shuffled."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
    images = rng.integers(0, 256, size=(labels.size, 28, 28), dtype=np.uint8)
    return images, labels


def write_idx_set(
    folder: Path, train_per_class: int = 12, test_per_class: int = 3, gz: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four IDX files of a tiny 10-class set in ``folder``; returns what they hold."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": idx_part(train_per_class, 1), "test": idx_part(test_per_class, 2)}
    for part, (images, labels) in parts.items():
        for name, array in zip(IDX_NAMES[part], (images, labels), strict=True):
            data = idx_bytes(array)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return parts


def write_svhn(folder: Path, part: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``<part>_32x32.mat`` as SVHN ships it: X is [32, 32, 3, N] uint8, y is [N, 1] with
    the digit 0 stored as 10. Returns the images as [N, 3, 32, 32] and the labels 0..9."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % 10)
    images = rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
    stored = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)
    folder.mkdir(parents=True, exist_ok=True)
    savemat(folder / f"{part}_32x32.mat", {"X": images.transpose(2, 3, 1, 0), "y": stored})
    return images, labels


def write_stl10(folder: Path, per_part: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``stl10_binary/{part}_X.bin`` (each image channel-major, each channel column-major,
    as STL-10 ships it) and ``{part}_y.bin`` (labels 1..10) for every part."""
    base = folder / "stl10_binary"
    base.mkdir(parents=True, exist_ok=True)
    written = {}
    for seed, (part, count) in enumerate(per_part.items()):
        rng = np.random.default_rng(seed)
        labels = rng.permutation(np.arange(count) % 10)
        images = rng.integers(0, 256, size=(count, 3, 96, 96), dtype=np.uint8)
        (base / f"{part}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        (base / f"{part}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
        written[part] = (images, labels)
    return written
