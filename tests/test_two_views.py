"""Two augmented views per batch (components/data/two_views.py): two different augmentations
of the same images, normalised with the training part's statistics, reproducible from (seed,
epoch, batch) alone, so a run resumed mid-epoch sees the views a straight run would."""

from __future__ import annotations

import torch

from ktg_dsl.check import parse_data
from ktg_dsl.components.data.two_views import TwoViewBatches
from ktg_dsl.run.data import load_bundle

STEPS = [
    {"type": "random_resized_crop", "scale": [0.5, 1.0], "ratio": [0.75, 1.33]},
    {"type": "horizontal_flip", "p": 0.5},
    {"type": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4,
     "hue": 0.1, "p": 0.8},
    {"type": "grayscale", "p": 0.2},
]  # fmt: skip


def bundle():  # type: ignore[no-untyped-def]
    data = {
        "version": 1,
        "name": "views",
        "data": {"dataset": {"type": "digits", "train_per_class": 10}},
        "train": {"epochs": 1},
        "nodes": {"a": {"model": "small_cnn"}},
        "edges": [{"from": "labels", "to": "a"}],
    }
    spec, issues = parse_data(data)
    assert spec is not None, issues
    return load_bundle(spec)


def test_views_differ_are_normalised_and_resume_exactly() -> None:
    data = bundle()
    views = TwoViewBatches(data, 16, STEPS, seed=3)
    views.set_epoch(1)
    batches = list(views)
    assert len(batches) == len(views) == 100 // 16
    x, y = batches[0]
    assert x.shape == (16, 2, *data.input_shape) and y.shape == (16,)
    assert not torch.equal(x[:, 0], x[:, 1])  # two draws, not one view twice
    assert abs(float(x.mean())) < 1.5 and x.dtype == torch.float32
    resumed = list(views.iterate(start=2))  # a run resumed at batch 2 of epoch 1
    for (a, ya), (b, yb) in zip(batches[2:], resumed, strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    views.set_epoch(2)
    assert not torch.equal(next(iter(views))[0], x)  # another epoch, other views


def test_float_images_beyond_unit_range_are_not_clipped() -> None:
    """kornia's colour steps clamp to [0, 1]: float images beyond it (synthetic data, a
    plugin's) are mapped onto [0, 1] for the augmentation and back, so an identity jitter
    gives the normalised images the kNN bank holds, and a real jitter stays in their range."""
    data = {
        "version": 1,
        "name": "floats",
        "data": {"dataset": {"type": "synthetic", "num_classes": 5, "image_size": 8}},
        "train": {"epochs": 1},
        "nodes": {"a": {"model": "small_cnn"}},
        "edges": [{"from": "labels", "to": "a"}],
    }
    spec, issues = parse_data(data)
    assert spec is not None, issues
    floats = load_bundle(spec)
    images = floats.train.images
    assert images.is_floating_point() and float(images.min()) < -1 and float(images.max()) > 2
    identity = [{"type": "color_jitter", "brightness": 0.0, "contrast": 0.0, "saturation": 0.0,
                 "hue": 0.0, "p": 1.0}]  # fmt: skip
    views = TwoViewBatches(floats, 16, identity, seed=0)
    views.set_epoch(0)
    (x, _), (raw, _) = next(iter(views)), next(iter(views.raw))
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (floats.mean, floats.std))
    torch.testing.assert_close(x[:, 0], (raw - mean) / std, rtol=1e-5, atol=1e-5)
    jitter = [{**identity[0], "brightness": 0.4, "contrast": 0.4}]
    x, _ = next(iter(TwoViewBatches(floats, 16, jitter, seed=0)))
    pixels = x * std.unsqueeze(1) + mean.unsqueeze(1)  # back to the images' own scale
    assert float(pixels.min()) >= float(images.min()) - 1e-4
    assert float(pixels.max()) <= float(images.max()) + 1e-4
    assert not torch.allclose(x[:, 0], (raw - mean) / std)  # it did jitter
