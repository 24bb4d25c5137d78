"""Datasets (digits, CIFAR, image folders, synthetic) and the in-memory batch loader.

Everything runs offline: the CIFAR tests write small archives in CIFAR's real on-disk format
(Python 2 pickles) and read them back through torchvision's own classes, with the md5 sums of
the written files patched in so that torchvision's integrity check really runs.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
import struct
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torchvision.datasets import CIFAR10, CIFAR100

from ktg_dsl.components.data.bundle import (
    Augment,
    DataBundle,
    TensorSplit,
    channel_stats,
    derive_seed,
    generator,
)
from ktg_dsl.components.data.cifar import load_cifar_bundle
from ktg_dsl.components.data.digits import load_digits_bundle
from ktg_dsl.components.data.imagefolder import load_imagefolder_bundle
from ktg_dsl.components.data.loader import (
    TensorBatches,
    crop_and_flip,
    eval_batches,
    train_batches,
)
from ktg_dsl.components.data.synthetic import load_synthetic_bundle
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.registry import DATASETS, load_builtins

# The catalog's builder functions share these modules' names, so import the module by path.
imagefolder_module = importlib.import_module("ktg_dsl.components.data.imagefolder")


def _ids(split: TensorSplit) -> set[bytes]:
    return {bytes(img.contiguous().view(torch.uint8).numpy()) for img in split.images}


def _stats_of(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = images.double() / (255.0 if images.dtype == torch.uint8 else 1.0)
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), unbiased=False)


# --------------------------------------------------------------------------- bundle helpers


def test_derive_seed_separates_seeds_that_share_low_bits() -> None:
    # torch keeps only the low 32 bits of a seed; derived seeds must not collide there.
    a, b = derive_seed("x", 1), derive_seed("x", 1 + 2**32)
    assert a & 0xFFFFFFFF != b & 0xFFFFFFFF
    assert derive_seed("x", 1) == derive_seed("x", 1)
    assert not torch.equal(
        torch.rand(4, generator=generator(0, 1)), torch.rand(4, generator=generator(1, 0))
    )


def test_channel_stats_uint8_exact_and_float() -> None:
    images = torch.randint(0, 256, (50, 3, 5, 7), dtype=torch.uint8)
    mean, std = channel_stats(images)
    ref_mean, ref_std = _stats_of(images)
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), ref_mean, atol=1e-12)
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), ref_std, atol=1e-12)
    floats = torch.randn(3000, 2, 3, 3) * 2 + 5  # more than one chunk
    mean, std = channel_stats(floats)
    ref_mean, ref_std = _stats_of(floats)
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), ref_mean, atol=1e-9)
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), ref_std, atol=1e-6)
    # a constant channel must not yield std 0 (division by zero in the loader)
    assert channel_stats(torch.zeros(4, 1, 2, 2, dtype=torch.uint8))[1] == (1.0,)


def _bundle(**changes: Any) -> DataBundle:
    split = TensorSplit(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 2, 0]))
    fields: dict[str, Any] = dict(
        train=split,
        eval=split,
        num_classes=3,
        input_shape=(1, 2, 2),
        mean=(0.5,),
        std=(0.2,),
        augment=None,
        eval_name="val",
        description="toy",
    )
    fields.update(changes)
    return DataBundle(**fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(num_classes=2), "labels must lie in [0, 2), found 0..2"),
        (
            dict(input_shape=(3, 2, 2), mean=(0, 0, 0), std=(1, 1, 1)),
            "must have shape [N, 3, 2, 2]",
        ),
        (
            dict(
                eval=TensorSplit(
                    torch.zeros(0, 1, 2, 2, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
                )
            ),
            "val split is empty",
        ),
        (
            dict(
                eval=TensorSplit(
                    torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(2, dtype=torch.int32)
                )
            ),
            "labels must be int64",
        ),
        (
            dict(
                train=TensorSplit(
                    torch.zeros(2, 1, 2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.int64)
                )
            ),
            "uint8 or float32",
        ),
        (dict(mean=(0.1, 0.2)), "one value per channel"),
    ],
)
def test_bundle_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(KtgRuntimeError, match="not usable") as info:
        _bundle(**changes)
    assert message in str(info.value)


def test_bundle_valid() -> None:
    assert _bundle().num_classes == 3


# --------------------------------------------------------------------------- digits


def test_digits_splits_and_preprocessing() -> None:
    val = load_digits_bundle(seed=0, split="val")
    test = load_digits_bundle(seed=0, split="test")
    assert (len(val.train), len(val.eval)) == (1151, 287)
    assert (len(test.train), len(test.eval)) == (1438, 359)
    assert len(val.train) + len(val.eval) == len(test.train)
    assert len(test.train) + len(test.eval) == 1797
    assert val.eval_name == "val" and test.eval_name == "test"
    for bundle in (val, test):
        assert bundle.input_shape == (1, 8, 8) and bundle.num_classes == 10
        assert bundle.augment is None
        for part in (bundle.train, bundle.eval):
            assert part.images.dtype == torch.float32 and part.images.shape[1:] == (1, 8, 8)
            assert float(part.images.min()) >= 0.0 and float(part.images.max()) <= 1.0
            # values are the original 0..16 counts divided by 16
            assert torch.equal(part.images * 16, (part.images * 16).round())
            assert set(part.labels.tolist()) == set(range(10))
    assert val.mean == pytest.approx(tuple(float(m) for m in _stats_of(val.train.images)[0]))
    # the test part is stratified: every class has 35..37 test images
    counts = torch.bincount(test.eval.labels, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37


def test_digits_determinism() -> None:
    a, b = load_digits_bundle(seed=1, split="val"), load_digits_bundle(seed=1, split="val")
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.eval.labels, b.eval.labels)
    c = load_digits_bundle(seed=2, split="val")
    assert _ids(a.eval) != _ids(c.eval)
    # the test part never depends on the seed, and never overlaps train/val
    t1, t2 = load_digits_bundle(seed=1, split="test"), load_digits_bundle(seed=2, split="test")
    assert torch.equal(t1.eval.images, t2.eval.images)
    assert torch.equal(t1.eval.labels, t2.eval.labels)
    assert _ids(t1.train) == _ids(a.train) | _ids(a.eval) == _ids(c.train) | _ids(c.eval)


# --------------------------------------------------------------------------- CIFAR files


class _Py2Str(bytes):
    """A Python 2 ``str``: the type of every key and name in the real CIFAR pickles."""


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets us add an opcode writer
    dispatch: ClassVar[dict[type, Any]] = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + bytes(obj))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + bytes(obj))
        self.memoize(obj)

    dispatch[_Py2Str] = save_py2str


def _write_pickle(path: Path, content: dict[str, Any]) -> str:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return _Py2Str(value.encode())
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump({convert(k): convert(v) for k, v in content.items()})
    return hashlib.md5(path.read_bytes()).hexdigest()


def _cifar_rows(n: int, first_id: int, rng: np.random.Generator) -> np.ndarray:
    rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    ids = np.arange(first_id, first_id + n)
    rows[:, 0], rows[:, 1] = ids // 256, ids % 256  # red pixels (0, 0) and (0, 1) name the image
    return rows


def _write_cifar(
    root: Path,
    classes: int,
    monkeypatch: pytest.MonkeyPatch,
    *,
    per_batch: int = 12,
    test_size: int = 10,
) -> dict[str, np.ndarray]:
    """A small CIFAR-10/100 in the real layout; returns the raw rows and labels written."""
    rng = np.random.default_rng(classes)
    cls = CIFAR10 if classes == 10 else CIFAR100
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if classes == 10 else "fine_labels"
    train_names = [f"data_batch_{i}" for i in range(1, 6)] if classes == 10 else ["train"]
    per_file = per_batch if classes == 10 else 5 * per_batch
    rows, labels, train_list = [], [], []
    for i, name in enumerate(train_names):
        part = _cifar_rows(per_file, i * per_file, rng)
        part[:, 1024:] //= 2  # darker than the test images: train-only statistics show
        lab = rng.integers(0, classes, size=per_file).tolist()
        content: dict[str, Any] = {
            "batch_label": "training batch",
            "data": part,
            label_key: lab,
            "filenames": [f"{j}.png" for j in lab],
        }
        if classes == 100:
            content["coarse_labels"] = [j // 5 for j in lab]
        train_list.append([name, _write_pickle(folder / name, content)])
        rows.append(part)
        labels.extend(lab)
    test_rows = _cifar_rows(test_size, 10_000, rng)
    test_rows[:, 1024:] = 255
    test_labels = rng.integers(0, classes, size=test_size).tolist()
    test_name = "test_batch" if classes == 10 else "test"
    content = {"data": test_rows, label_key: test_labels}
    if classes == 100:
        content["coarse_labels"] = [j // 5 for j in test_labels]
    test_list = [[test_name, _write_pickle(folder / test_name, content)]]
    meta_name, meta_key = (
        ("batches.meta", "label_names") if classes == 10 else ("meta", "fine_label_names")
    )
    meta = {meta_key: [f"class{j}" for j in range(classes)]}
    if classes == 100:
        meta["coarse_label_names"] = [f"super{j}" for j in range(20)]
    meta_md5 = _write_pickle(folder / meta_name, meta)
    monkeypatch.setattr(cls, "train_list", train_list)
    monkeypatch.setattr(cls, "test_list", test_list)
    monkeypatch.setattr(cls, "meta", {"filename": meta_name, "key": meta_key, "md5": meta_md5})
    return {
        "train": np.concatenate(rows),
        "train_labels": np.array(labels),
        "test": test_rows,
        "test_labels": np.array(test_labels),
    }


def _image_ids(images: torch.Tensor) -> list[int]:
    return (images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()).tolist()


def test_written_cifar_pickles_look_like_the_real_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_cifar(tmp_path, 100, monkeypatch)
    with open(tmp_path / "cifar-100-python" / "train", "rb") as f:
        raw = pickle.load(f, encoding="bytes")  # how the CIFAR page says to read them
    assert {b"data", b"fine_labels", b"coarse_labels"} <= set(raw)
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape == (60, 3072)


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_val_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, classes: int) -> None:
    raw = _write_cifar(tmp_path, classes, monkeypatch)
    bundle = load_cifar_bundle(
        classes, root=str(tmp_path), download=False, seed=7, split="val", val_size=15, augment=True
    )
    assert (len(bundle.train), len(bundle.eval)) == (45, 15)
    assert bundle.num_classes == classes and bundle.input_shape == (3, 32, 32)
    assert bundle.eval_name == "val" and bundle.augment == Augment(pad=4, flip=True)
    assert bundle.class_names == [f"class{j}" for j in range(classes)]
    assert bundle.train.images.dtype == torch.uint8 and bundle.train.labels.dtype == torch.int64
    train_ids, val_ids = _image_ids(bundle.train.images), _image_ids(bundle.eval.images)
    assert sorted(train_ids + val_ids) == list(range(60))
    # NCHW layout equals the pickled channel-major rows, image by image, labels included
    expected = torch.from_numpy(raw["train"]).view(-1, 3, 32, 32)
    assert torch.equal(bundle.train.images, expected[train_ids])
    assert torch.equal(bundle.eval.labels, torch.from_numpy(raw["train_labels"])[val_ids])
    # a known pixel: channel 2 (blue), row 3, column 5 of the first validation image
    assert int(bundle.eval.images[0, 2, 3, 5]) == int(raw["train"][val_ids[0], 2048 + 3 * 32 + 5])
    # statistics from the training part only
    mean, std = _stats_of(bundle.train.images)
    assert bundle.mean == pytest.approx(mean.tolist()) and bundle.std == pytest.approx(std.tolist())

    again = load_cifar_bundle(
        classes, root=str(tmp_path), download=False, seed=7, split="val", val_size=15
    )
    assert _image_ids(again.eval.images) == val_ids
    other = load_cifar_bundle(
        classes, root=str(tmp_path), download=False, seed=8, split="val", val_size=15
    )
    assert _image_ids(other.eval.images) != val_ids


def test_cifar_test_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _write_cifar(tmp_path, 10, monkeypatch)
    bundle = load_cifar_bundle(
        10, root=str(tmp_path), download=False, seed=7, split="test", augment=False
    )
    assert (len(bundle.train), len(bundle.eval)) == (60, 10)
    assert bundle.eval_name == "test" and bundle.augment is None
    assert torch.equal(bundle.train.images, torch.from_numpy(raw["train"]).view(-1, 3, 32, 32))
    assert torch.equal(bundle.eval.images, torch.from_numpy(raw["test"]).view(-1, 3, 32, 32))
    assert bundle.eval.labels.tolist() == raw["test_labels"].tolist()
    # the (bright) test images do not enter the normalisation statistics
    assert bundle.mean == pytest.approx(_stats_of(bundle.train.images)[0].tolist())
    assert bundle.mean[2] < 0.3


def test_cifar_through_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_builtins()
    _write_cifar(tmp_path, 100, monkeypatch)
    component = DATASETS.get("cifar100")
    bundle = component.build(
        {"val_size": 10}, root=str(tmp_path), download=False, seed=0, split="val"
    )
    info = component.meta.info({"val_size": 10}, str(tmp_path))
    assert (bundle.num_classes, bundle.input_shape) == (info.num_classes, info.input_shape)
    assert len(bundle.eval) == 10


def test_cifar_missing_dataset(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(KtgRuntimeError) as info:
        load_cifar_bundle(100, root=str(root), download=False, seed=0, split="val")
    message = str(info.value)
    assert str(root / "cifar-100-python") in message and "download: true" in message
    assert not root.exists()  # nothing fetched, nothing created


def test_cifar_corrupted_file_fails_the_real_md5_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_cifar(tmp_path, 10, monkeypatch)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\0")
    with pytest.raises(KtgRuntimeError, match="cifar-10-batches-py"):
        load_cifar_bundle(10, root=str(tmp_path), download=False, seed=0, split="test")


def test_cifar_val_size_must_leave_both_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_cifar(tmp_path, 10, monkeypatch)
    with pytest.raises(KtgRuntimeError, match="val_size"):
        load_cifar_bundle(10, root=str(tmp_path), download=False, seed=0, split="val", val_size=0)


# --------------------------------------------------------------------------- image folders

_COLOURS = {"cat": (200, 10, 10), "dog": (10, 200, 10), "emu": (10, 10, 200)}


def _write_folder(root: Path, part: str, classes: dict[str, int]) -> None:
    for name, count in classes.items():
        folder = root / part / name
        folder.mkdir(parents=True)
        for i in range(count):
            colour = _COLOURS.get(name, (90, 90, 90))
            Image.new("RGB", (12 + i, 10), colour).save(folder / f"{i}.png")


def test_imagefolder_held_out_val(tmp_path: Path) -> None:
    _write_folder(tmp_path, "train", {"cat": 5, "dog": 5, "emu": 10})
    bundle = load_imagefolder_bundle(
        str(tmp_path), seed=3, split="val", image_size=8, val_fraction=0.2, augment=True
    )
    assert bundle.class_names == ["cat", "dog", "emu"] and bundle.num_classes == 3
    assert (len(bundle.train), len(bundle.eval)) == (16, 4)
    assert torch.bincount(bundle.eval.labels).tolist() == [1, 1, 2]
    assert bundle.train.images.shape[1:] == (3, 8, 8) and bundle.input_shape == (3, 8, 8)
    assert bundle.train.images.dtype == torch.uint8
    assert bundle.augment == Augment(pad=1, flip=True)
    # a solid image stays solid when resized: the pixels carry the class colour
    for image, label in zip(bundle.eval.images, bundle.eval.labels.tolist(), strict=True):
        colour = _COLOURS[bundle.class_names[label]]
        assert image[:, 4, 4].tolist() == list(colour)
    same = load_imagefolder_bundle(str(tmp_path), seed=3, split="val", image_size=8)
    assert torch.equal(same.eval.images, bundle.eval.images)


def test_imagefolder_val_and_test_folders(tmp_path: Path) -> None:
    _write_folder(tmp_path, "train", {"cat": 3, "dog": 3, "emu": 3})
    _write_folder(tmp_path, "val", {"cat": 1, "dog": 2, "emu": 1})
    _write_folder(tmp_path, "test", {"cat": 2, "dog": 2, "emu": 2})
    val = load_imagefolder_bundle(str(tmp_path), seed=0, split="val", image_size=16, augment=False)
    assert (len(val.train), len(val.eval)) == (9, 4) and val.augment is None
    assert val.eval.labels.tolist() == [0, 1, 1, 2]
    test = load_imagefolder_bundle(str(tmp_path), seed=0, split="test", image_size=16)
    assert (len(test.train), len(test.eval), test.eval_name) == (13, 6, "test")
    assert test.augment == Augment(pad=2, flip=True)


def test_imagefolder_class_mismatch(tmp_path: Path) -> None:
    _write_folder(tmp_path, "train", {"cat": 2, "dog": 2, "emu": 2})
    _write_folder(tmp_path, "val", {"cat": 1, "dog": 1, "yak": 1})
    with pytest.raises(KtgRuntimeError) as info:
        load_imagefolder_bundle(str(tmp_path), seed=0, split="val")
    message = str(info.value)
    assert str(tmp_path / "val") in message
    assert "missing in val/: emu" in message and "not in train/: yak" in message


def test_imagefolder_missing_parts(tmp_path: Path) -> None:
    with pytest.raises(KtgRuntimeError, match="no train/ folder"):
        load_imagefolder_bundle(str(tmp_path), seed=0, split="val")
    _write_folder(tmp_path, "train", {"cat": 2, "dog": 2, "emu": 2})
    with pytest.raises(KtgRuntimeError, match="needs a test/ folder") as info:
        load_imagefolder_bundle(str(tmp_path), seed=0, split="test")
    assert str(tmp_path / "test") in str(info.value)
    (tmp_path / "train" / "gnu").mkdir()  # a class without images
    with pytest.raises(KtgRuntimeError, match="gnu"):
        load_imagefolder_bundle(str(tmp_path), seed=0, split="val")


def test_imagefolder_refuses_oversized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_folder(tmp_path, "train", {"cat": 2, "dog": 2, "emu": 2})
    monkeypatch.setattr(imagefolder_module, "MAX_BYTES", 6 * 3 * 32 * 32 - 1)
    with pytest.raises(KtgRuntimeError, match="GiB"):
        load_imagefolder_bundle(str(tmp_path), seed=0, split="val", image_size=32)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_determinism_and_learnability() -> None:
    small: dict[str, Any] = dict(
        num_classes=4, image_size=6, channels=2, train_size=40, val_size=12, noise=1.0
    )
    a = load_synthetic_bundle(seed=5, split="val", augment=True, **small)
    assert a.train.images.shape == (40, 2, 6, 6) and a.eval.images.shape == (12, 2, 6, 6)
    assert a.train.images.dtype == torch.float32
    assert torch.bincount(a.train.labels).tolist() == [10, 10, 10, 10]
    assert a.augment == Augment(pad=0, flip=True) and a.eval_name == "val"
    b = load_synthetic_bundle(seed=5, split="val", **small)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.eval.labels, b.eval.labels)
    assert b.augment is None
    c = load_synthetic_bundle(seed=6, split="val", **small)
    assert not torch.equal(a.train.images, c.train.images)
    t = load_synthetic_bundle(seed=5, split="test", **small)
    assert t.eval_name == "test" and torch.equal(t.train.images, a.train.images)
    assert not torch.equal(t.eval.images, a.eval.images)
    # nearest class mean of the training images classifies the evaluation images
    means = torch.stack([a.train.images[a.train.labels == k].mean(0) for k in range(4)])
    dist = torch.cdist(a.eval.images.flatten(1), means.flatten(1))
    assert (dist.argmin(1) == a.eval.labels).float().mean() >= 0.9


def test_synthetic_and_digits_through_the_catalog() -> None:
    load_builtins()
    for name, args in (("synthetic", {"train_size": 30, "val_size": 10}), ("digits", {})):
        component = DATASETS.get(name)
        bundle = component.build(args, root="data", download=False, seed=0, split="val")
        info = component.meta.info(args, "data")
        assert (bundle.num_classes, bundle.input_shape) == (info.num_classes, info.input_shape)


# --------------------------------------------------------------------------- TensorBatches


def _id_split(n: int = 100, size: int = 8) -> TensorSplit:
    """uint8 images whose labels are their indices (num_classes is not checked here)."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    return TensorSplit(images, torch.arange(n))


def _epoch(loader: TensorBatches, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch)
    return list(loader)


def _same(
    a: list[tuple[torch.Tensor, torch.Tensor]], b: list[tuple[torch.Tensor, torch.Tensor]]
) -> bool:
    return len(a) == len(b) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


_NORM = dict(mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.3))
_AUG = Augment(pad=2, flip=True)


def test_batches_deterministic_per_seed_and_epoch() -> None:
    split = _id_split()
    fresh = TensorBatches(split, 16, **_NORM, augment=_AUG, shuffle=True, seed=3)
    used = TensorBatches(split, 16, **_NORM, augment=_AUG, shuffle=True, seed=3)
    for e in range(3):  # whatever ran before, epoch 3 is the same
        _epoch(used, e)
    assert _same(_epoch(fresh, 3), _epoch(used, 3))
    assert not _same(_epoch(fresh, 3), _epoch(fresh, 4))
    other_seed = TensorBatches(split, 16, **_NORM, augment=_AUG, shuffle=True, seed=4)
    assert not _same(_epoch(fresh, 3), _epoch(other_seed, 3))


def test_batches_cover_every_sample_once() -> None:
    loader = TensorBatches(_id_split(), 32, **_NORM, shuffle=True, seed=1)
    assert len(loader) == 4
    batches = _epoch(loader, 0)
    assert [len(y) for _, y in batches] == [32, 32, 32, 4]
    ids = torch.cat([y for _, y in batches])
    assert sorted(ids.tolist()) == list(range(100)) and ids.tolist() != list(range(100))
    assert ids.tolist() != torch.cat([y for _, y in _epoch(loader, 1)]).tolist()


def test_batches_drop_last() -> None:
    loader = TensorBatches(_id_split(), 32, **_NORM, shuffle=True, drop_last=True)
    assert len(loader) == 3
    batches = list(loader)
    assert len(batches) == 3 and all(len(y) == 32 for _, y in batches)
    assert len(set(torch.cat([y for _, y in batches]).tolist())) == 96
    assert len(TensorBatches(_id_split(10), 32, **_NORM, drop_last=True)) == 0


def test_batches_normalise_and_keep_eval_order() -> None:
    bundle = _random_uint8_bundle()
    loader = eval_batches(bundle.train, 64, mean=bundle.mean, std=bundle.std)
    batches = list(loader)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(y, bundle.train.labels)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    mean = torch.tensor(bundle.mean).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std).view(1, 3, 1, 1)
    expected = (bundle.train.images.float() / 255 - mean) / std
    assert torch.allclose(x, expected, atol=1e-5)


def _random_uint8_bundle() -> DataBundle:
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (300, 3, 8, 8), dtype=torch.uint8, generator=gen)
    images[:, 1] //= 3  # channels with different statistics
    labels = torch.randint(0, 10, (300,), generator=gen)
    mean, std = channel_stats(images)
    split = TensorSplit(images, labels)
    return DataBundle(
        train=split,
        eval=split,
        num_classes=10,
        input_shape=(3, 8, 8),
        mean=mean,
        std=std,
        augment=Augment(pad=1, flip=True),
        eval_name="val",
        description="random",
    )


def test_batches_float_images_are_not_rescaled() -> None:
    bundle = load_digits_bundle(seed=0, split="val")
    x, _ = next(iter(eval_batches(bundle.eval, 8, mean=(0.0,), std=(1.0,))))
    assert torch.equal(x, bundle.eval.images[:8])


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize(("pad", "dtype"), [(4, torch.uint8), (2, torch.float32), (0, torch.uint8)])
def test_crop_matches_torchvision(flip: bool, pad: int, dtype: torch.dtype) -> None:
    image = (torch.rand(3, 32, 32) * 255).to(dtype)
    span = 2 * pad + 1
    offsets = [(top, left) for top in range(span) for left in range(span)]
    batch = image.expand(len(offsets), 3, 32, 32)
    tops = torch.tensor([t for t, _ in offsets])
    lefts = torch.tensor([left for _, left in offsets])
    out = crop_and_flip(batch, pad, tops, lefts, torch.full((len(offsets),), flip))
    assert out.dtype == dtype and out.shape == batch.shape
    for k, (top, left) in enumerate(offsets):
        expected = TF.crop(TF.pad(image, [pad]), top, left, 32, 32)
        if flip:
            expected = TF.horizontal_flip(expected)
        assert torch.equal(out[k], expected), (top, left, flip)


def test_augmented_batches_are_crops_of_their_images() -> None:
    split = _id_split(64, size=6)
    pad = 2
    loader = TensorBatches(
        split,
        16,
        mean=(0.0,) * 3,
        std=(1 / 255,) * 3,
        augment=Augment(pad=pad, flip=True),
        shuffle=True,
        seed=9,
    )
    seen_flip, seen_offsets = set(), set()
    for x, y in loader:
        for image, index in zip(x.round().to(torch.uint8), y.tolist(), strict=True):
            padded = TF.pad(split.images[index], [pad])
            matches = [
                (top, left, flip)
                for top in range(2 * pad + 1)
                for left in range(2 * pad + 1)
                for flip in (False, True)
                if torch.equal(
                    image,
                    (TF.horizontal_flip if flip else (lambda t: t))(
                        TF.crop(padded, top, left, 6, 6)
                    ),
                )
            ]
            assert matches, index
            seen_flip.add(matches[0][2])
            seen_offsets.add(matches[0][:2])
    assert seen_flip == {False, True} and len(seen_offsets) > 10


def test_channels_last_and_on_device_paths_agree() -> None:
    bundle = _random_uint8_bundle()
    kwargs: dict[str, Any] = dict(seed=2, drop_last=False)
    plain = train_batches(bundle, 64, **kwargs)
    cl = train_batches(bundle, 64, channels_last=True, **kwargs)
    resident = train_batches(bundle, 64, on_device=True, **kwargs)
    for epoch in (0, 5):
        a, b, c = _epoch(plain, epoch), _epoch(cl, epoch), _epoch(resident, epoch)
        assert all(x.is_contiguous(memory_format=torch.channels_last) for x, _ in b)
        assert _same(a, c)
        assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(a, b, strict=True))


def test_batches_reject_bad_arguments() -> None:
    with pytest.raises(KtgRuntimeError, match="batch size"):
        TensorBatches(_id_split(), 0, **_NORM)
    with pytest.raises(KtgRuntimeError, match="one per channel"):
        TensorBatches(_id_split(), 4, mean=(0.5,), std=(0.2,))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_paths_match_the_cpu() -> None:
    bundle = _random_uint8_bundle()
    reference = _epoch(train_batches(bundle, 64, seed=2), 1)
    for on_device in (False, True):
        loader = train_batches(bundle, 64, seed=2, device="cuda", on_device=on_device)
        batches = _epoch(loader, 1)
        assert all(x.is_cuda and y.is_cuda for x, y in batches)
        for (xc, yc), (x, y) in zip(batches, reference, strict=True):
            assert torch.equal(yc.cpu(), y) and torch.allclose(xc.cpu(), x, atol=1e-6)
