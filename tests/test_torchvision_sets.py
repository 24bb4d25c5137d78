"""The IDX datasets (Fashion-MNIST, MNIST, KMNIST), SVHN, STL-10 and the generic torchvision
dataset, read by torchvision's own readers from small files the tests write in each real
on-disk format; where the files are looked for, and what validate says when they are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ktg_dsl.components.data.bundle import DataBundle
from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.registry import DATASETS, load_builtins

from .conftest import base_spec
from .datafiles import write_idx_set, write_stl10, write_svhn

load_builtins()


@pytest.fixture(autouse=True)
def no_system_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's dataset folders are an empty folder, so that a Fashion-MNIST installed on
    this machine never answers for the files a test writes (or does not)."""
    folder = tmp_path / "system"
    folder.mkdir()
    monkeypatch.setenv("KTG_DATASETS_DIRS", str(folder))
    return folder


def build(kind: str, root: Path, split: str = "val", seed: int = 0, **args: object) -> DataBundle:
    bundle = DATASETS.get(kind).build(args, root=str(root), download=False, seed=seed, split=split)
    assert isinstance(bundle, DataBundle)
    return bundle


def _keys(images: torch.Tensor) -> list[bytes]:
    return [bytes(img.numpy()) for img in images]


def _rows(images: torch.Tensor) -> set[bytes]:
    return set(_keys(images))


def test_fashion_mnist_reads_gzipped_idx_files_and_splits_every_class(tmp_path: Path) -> None:
    written = write_idx_set(tmp_path / "data" / "fashion-mnist", train_per_class=12)
    val = build("fashion_mnist", tmp_path / "data", "val")
    images, _labels = written["train"]
    # a sixth of every class held out (2 of 12), the rest trains; nothing in both
    assert (len(val.train), len(val.eval)) == (100, 20)
    assert torch.bincount(val.eval.labels, minlength=10).tolist() == [2] * 10
    assert val.train.images.dtype == torch.uint8 and val.input_shape == (1, 28, 28)
    assert _rows(val.train.images) | _rows(val.eval.images) == _rows(torch.from_numpy(images))
    assert not _rows(val.train.images) & _rows(val.eval.images)
    assert val.class_names is not None and val.class_names[0] == "T-shirt/top"
    assert val.augment is not None and (val.augment.pad, val.augment.flip) == (2, True)
    test = build("fashion_mnist", tmp_path / "data", "test")
    first = torch.from_numpy(written["test"][0][0]).unsqueeze(0)
    assert (len(test.train), len(test.eval)) == (120, 30)
    assert torch.equal(test.eval.images[0], first)
    assert test.eval.labels.tolist() == written["test"][1].tolist()
    assert "Fashion-MNIST" in test.description and "fashion-mnist" in test.description


def test_per_class_and_label_noise_touch_the_training_part_only(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "fashion-mnist", train_per_class=12)
    plain = build("fashion_mnist", tmp_path, "test", seed=3)
    hard = build("fashion_mnist", tmp_path, "test", seed=3, train_per_class=5, label_noise=0.2)
    assert len(hard.train) == 50 and torch.equal(hard.eval.labels, plain.eval.labels)
    truth = dict(zip(_keys(plain.train.images), plain.train.labels.tolist(), strict=True))
    pairs = zip(_keys(hard.train.images), hard.train.labels.tolist(), strict=True)
    wrong = sum(truth[key] != label for key, label in pairs)
    assert wrong == 10  # exactly 20% of 50, each moved to another class
    again = build("fashion_mnist", tmp_path, "test", seed=3, train_per_class=5, label_noise=0.2)
    assert torch.equal(again.train.labels, hard.train.labels)
    with pytest.raises(KtgRuntimeError, match="holds only 12 images of class"):
        build("fashion_mnist", tmp_path, "test", train_per_class=13)


def test_eval_per_class_is_the_same_test_subset_for_every_seed(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "fashion-mnist", test_per_class=5)
    full = build("fashion_mnist", tmp_path, "test", seed=0)
    one, two = (build("fashion_mnist", tmp_path, "test", seed=s, eval_per_class=2) for s in (0, 1))
    assert torch.equal(one.eval.images, two.eval.images) and len(one.eval) == 20
    assert torch.bincount(one.eval.labels, minlength=10).tolist() == [2] * 10
    assert set(_keys(one.eval.images)) < set(_keys(full.eval.images))
    assert torch.equal(one.train.images, full.train.images)  # training untouched
    with pytest.raises(
        KtgRuntimeError,
        match="eval_per_class is 6, but with split: test the test part holds only 5",
    ):
        build("fashion_mnist", tmp_path, "test", eval_per_class=6)


def test_torchvision_layout_plain_files_and_mnist_without_flip(tmp_path: Path) -> None:
    written = write_idx_set(tmp_path / "MNIST" / "raw", gz=False)
    bundle = build("mnist", tmp_path, "test", augment=True)
    assert bundle.augment is not None and not bundle.augment.flip
    assert bundle.train.labels.tolist() == written["train"][1].tolist()
    assert build("mnist", tmp_path, "test", augment=False).augment is None


def test_the_system_folder_is_used_when_the_root_has_none(
    tmp_path: Path, no_system_data: Path
) -> None:
    write_idx_set(no_system_data / "fashion-mnist")
    bundle = build("fashion_mnist", tmp_path / "empty", "test")
    assert str(no_system_data / "fashion-mnist") in bundle.description


def test_missing_files_say_the_package_and_the_download(tmp_path: Path) -> None:
    with pytest.raises(KtgRuntimeError) as err:
        build("fashion_mnist", tmp_path, "val")
    text = str(err.value)
    assert "Fashion-MNIST not found" in text and "train-images-idx3-ubyte[.gz]" in text
    assert "apt-get install dataset-fashion-mnist" in text and "download: true" in text
    with pytest.raises(KtgRuntimeError) as err:
        build("kmnist", tmp_path, "val")
    assert "apt-get" not in str(err.value) and "download: true" in str(err.value)


def test_a_damaged_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    write_idx_set(folder, gz=False)
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x01garbage")
    with pytest.raises(
        KtgRuntimeError, match=r"cannot read .*train-images-idx3-ubyte as IDX images"
    ):
        build("fashion_mnist", tmp_path, "test")
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(KtgRuntimeError, match=r"idx3-ubyte.gz as IDX images"):
        build("fashion_mnist", tmp_path, "test")


def _fashion_spec(tmp_path: Path, **data: object) -> Path:
    import yaml

    dataset = {"type": "fashion_mnist", "train_per_class": 4}
    spec = base_spec(data={"dataset": dataset, "batch_size": 8, **data})
    path = tmp_path / "fashion.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_validate_without_the_data_says_how_to_get_it(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _fashion_spec(tmp_path)
    code, _out, err = cli("validate", spec)
    assert code == 1 and "Traceback" not in err
    assert "data.dataset: Fashion-MNIST not found" in err
    assert "apt-get install dataset-fashion-mnist" in err and "download: true" in err
    assert cli("validate", _fashion_spec(tmp_path, download=True))[0] == 0
    write_idx_set(tmp_path / "data" / "fashion-mnist")
    assert cli("validate", spec)[0] == 0
    code, _out, err = cli("validate", _fashion_spec(tmp_path, split="val"), "--set",
                         "data.dataset.train_per_class=5001")  # fmt: skip
    assert code == 1 and "holds only 5000 images of its smallest class" in err


def test_train_on_idx_files(cli, tmp_path: Path, monkeypatch) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    write_idx_set(tmp_path / "data" / "fashion-mnist")
    spec = _fashion_spec(tmp_path, split="test")
    code, out, err = cli("train", spec, "--set", "train.epochs=1", "--set", "train.out_dir=runs")
    assert code == 0, err
    metrics = [json.loads(line) for line in next(Path("runs").rglob("metrics.jsonl")).open()]
    assert metrics and "Fashion-MNIST" in out + err


def test_svhn_mat_files(tmp_path: Path) -> None:
    images, labels = write_svhn(tmp_path, "train", 40, seed=0)
    _test_images, test_labels = write_svhn(tmp_path, "test", 20, seed=1)
    bundle = build("svhn", tmp_path, "test")
    assert bundle.input_shape == (3, 32, 32) and bundle.num_classes == 10
    assert torch.equal(bundle.train.images, torch.from_numpy(images))
    assert bundle.train.labels.tolist() == labels.tolist()  # digit 0 is label 0, not 10
    assert bundle.eval.labels.tolist() == test_labels.tolist()
    assert bundle.augment is not None and not bundle.augment.flip
    val = build("svhn", tmp_path, "val", val_fraction=0.25, image_size=16)
    assert (len(val.train), len(val.eval), val.input_shape) == (30, 10, (3, 16, 16))
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(KtgRuntimeError, match=r"SVHN not found.*test_32x32\.mat"):
        build("svhn", tmp_path, "test")


def test_stl10_binaries(tmp_path: Path) -> None:
    written = write_stl10(tmp_path, {"train": 40, "test": 10})
    bundle = build("stl10", tmp_path, "test")
    assert torch.equal(bundle.train.images, torch.from_numpy(written["train"][0]))
    assert bundle.eval.labels.tolist() == written["test"][1].tolist()  # 1..10 stored, 0..9 read
    assert bundle.augment is not None and bundle.augment.flip and bundle.augment.pad == 12
    small = build("stl10", tmp_path, "val", image_size=32)
    assert small.input_shape == (3, 32, 32) and small.augment is not None
    assert small.augment.pad == 4 and (len(small.train), len(small.eval)) == (30, 10)


def test_generic_torchvision_class_by_name(tmp_path: Path) -> None:
    written = write_idx_set(tmp_path / "MNIST" / "raw", gz=False)  # torchvision's layout
    bundle = build("torchvision", tmp_path, "test", name="MNIST", augment=True, flip=False)
    assert bundle.input_shape == (1, 28, 28) and bundle.num_classes == 10
    assert bundle.train.images[:, 0].numpy().tolist() == written["train"][0].tolist()
    assert bundle.eval.labels.tolist() == written["test"][1].tolist()
    assert bundle.augment is not None and bundle.augment.pad == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "NoSuchSet"}, "torchvision.datasets has no dataset class 'NoSuchSet'"),
        (
            {"name": "MNIST", "options": {"colour": 3}},
            "options do not fit torchvision.datasets.MNIST",
        ),
        ({"name": "MNIST", "options": {"train": False}}, "may not set train: ktg sets them"),
        ({"name": "EMNIST"}, "options do not fit torchvision.datasets.EMNIST"),  # needs split
    ],
)
def test_generic_options_are_checked_against_the_signature(
    cli, spec_file, args: dict[str, object], message: str
) -> None:
    code, _out, err = cli(
        "validate", spec_file(base_spec(data={"dataset": {"type": "torchvision", **args}}))
    )
    assert code == 1 and message in err and "Traceback" not in err


def test_loaded_images_batch_and_augment_on_the_cpu(tmp_path: Path) -> None:
    from ktg_dsl.components.data.loader import train_batches

    write_idx_set(tmp_path / "fashion-mnist")
    bundle = build("fashion_mnist", tmp_path, "test")
    x, y = next(iter(train_batches(bundle, 16, device="cpu", seed=0)))
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (16,)
    assert not np.isnan(x.numpy()).any()
