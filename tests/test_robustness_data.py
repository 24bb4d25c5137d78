"""Datasets that cannot be held: an image over Pillow's pixel limit, an image file that is a FIFO,
a synthetic dataset of 150 TiB; each refused with a message naming what and why, before any
large allocation, and the synthetic one already by ``ktg validate``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from ktg_dsl.check import check_data
from ktg_dsl.components.data.imagefolder import load_imagefolder_bundle
from ktg_dsl.components.data.synthetic import load_synthetic_bundle
from ktg_dsl.errors import KtgRuntimeError

from .conftest import base_spec

HUGE = dict(train_size=10_000_000, image_size=512, channels=16)
HUGE_MESSAGE = (
    "the synthetic images (10,000,256 samples of 16x512x512 float32) need 152.6 TiB in memory, "
    "more than the 8.0 GiB ktg holds; lower train_size, val_size, image_size or channels"
)


def folder(root: Path, sizes: dict[str, tuple[int, int]]) -> dict[str, Path]:
    """train/<class>/x.png of the given pixel sizes, one image a class."""
    paths = {}
    for name, size in sizes.items():
        (root / "train" / name).mkdir(parents=True)
        paths[name] = root / "train" / name / "x.png"
        Image.new("RGB", size, (40, 80, 120)).save(paths[name])
    return paths


@pytest.mark.parametrize("limit", [100, 700], ids=["bomb-error", "bomb-warning"])
def test_an_image_over_pillows_pixel_limit_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    # Pillow warns above its limit and refuses above twice it; 32x32 = 1,024 pixels is over
    # both 100 and 200 (an error), and over 700 but under 1,400 (a warning, refused as well)
    paths = folder(tmp_path, {"cat": (8, 8), "dog": (32, 32)})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(KtgRuntimeError) as info:
        load_imagefolder_bundle(str(tmp_path), seed=0, split="val", image_size=8)
    assert str(info.value) == (
        f"cannot read image {paths['dog']}: it has more pixels than Pillow decodes safely "
        f"({limit:,}); it may be a decompression bomb. Shrink the image or remove it"
    )


@pytest.mark.timeout(60)
def test_an_image_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    folder(tmp_path, {"cat": (8, 8), "dog": (8, 8)})
    fifo = tmp_path / "train" / "dog" / "y.png"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    with pytest.raises(KtgRuntimeError) as info:
        load_imagefolder_bundle(str(tmp_path), seed=0, split="val", image_size=8)
    assert str(info.value) == f"cannot read image {fifo}: it is not a regular file"


def test_a_damaged_image_is_named(tmp_path: Path) -> None:
    folder(tmp_path, {"cat": (8, 8), "dog": (8, 8)})
    broken = tmp_path / "train" / "dog" / "z.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(KtgRuntimeError, match=rf"cannot read image {broken}: "):
        load_imagefolder_bundle(str(tmp_path), seed=0, split="val", image_size=8)


def test_a_synthetic_dataset_too_big_to_hold_is_a_validation_error() -> None:
    data = base_spec(data={"dataset": {"type": "synthetic", **HUGE}})
    report = check_data(data)
    assert [(i.path, i.message) for i in report.errors] == [(("data", "dataset"), HUGE_MESSAGE)]
    ok = base_spec(data={"dataset": {"type": "synthetic", "train_size": 60_000}})
    assert check_data(ok).ok


def test_a_synthetic_dataset_too_big_is_refused_before_allocating() -> None:
    start = time.process_time()  # CPU time: a busy machine may keep the test waiting
    with pytest.raises(KtgRuntimeError) as info:
        load_synthetic_bundle(seed=0, split="val", **HUGE)  # type: ignore[arg-type]
    assert str(info.value) == HUGE_MESSAGE
    assert time.process_time() - start < 5, "nothing was drawn"
