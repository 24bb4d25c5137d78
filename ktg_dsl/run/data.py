"""A spec's data: the dataset built from its registration, and its training and evaluation
batches on the program's device. Shared by ``ktg train``, ``ktg search`` and ``ktg bench``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..components.data import DatasetInfo
from ..components.data.bundle import DataBundle
from ..components.data.loader import TensorBatches, eval_batches, train_batches
from ..engine.program import Program
from ..errors import KtgRuntimeError
from ..registry import DATASETS
from ..spec.schema import Spec
from .env import fits_on_device


def load_bundle(spec: Spec) -> DataBundle:
    """The dataset the spec names, loaded (a clear error when its builder misbehaves)."""
    d = spec.data
    comp = DATASETS.get(d.dataset.type)
    bundle = comp.build(
        d.dataset.args, root=d.root, download=d.download, seed=spec.seed, split=d.split
    )
    if not isinstance(bundle, DataBundle):
        raise KtgRuntimeError(
            f"dataset '{d.dataset.type}' returned {type(bundle).__name__}, not a DataBundle"
        )
    return bundle


def bundle_info(bundle: DataBundle) -> DatasetInfo:
    return DatasetInfo(bundle.num_classes, bundle.input_shape)


def steps_per_epoch(spec: Spec, bundle: DataBundle) -> int:
    """Training steps in one epoch (at least one batch must fit when the last is dropped)."""
    batch, size = spec.data.batch_size, len(bundle.train)
    if spec.data.drop_last:
        if size < batch:
            raise KtgRuntimeError(
                f"the training split has {size} samples, fewer than one batch of {batch} "
                "(set data.batch_size lower or data.drop_last: false)"
            )
        return size // batch
    return math.ceil(size / batch)


@dataclass
class Batches:
    train: TensorBatches
    eval: TensorBatches


def _on_device(spec: Spec, bundle: DataBundle, program: Program) -> bool:
    """Whether to keep the whole dataset on the GPU (``data.on_device``; auto: if it fits)."""
    switch, device = spec.data.on_device, program.device
    if switch != "auto" or device.type != "cuda":
        return switch == "on" and device.type == "cuda"
    size = sum(
        t.numel() * t.element_size()
        for s in (bundle.train, bundle.eval)
        for t in (s.images, s.labels)
    )
    return fits_on_device(size, device)


def make_batches(spec: Spec, bundle: DataBundle, program: Program) -> Batches:
    """Shuffled, augmented training batches and in-order evaluation batches."""
    on_device = _on_device(spec, bundle, program)
    batch = spec.data.batch_size
    return Batches(
        train_batches(
            bundle,
            batch,
            seed=spec.seed,
            device=program.device,
            drop_last=spec.data.drop_last,
            channels_last=program.channels_last,
            on_device=on_device,
        ),
        eval_batches(
            bundle.eval,
            spec.data.eval_batch_size or 4 * batch,
            mean=bundle.mean,
            std=bundle.std,
            device=program.device,
            channels_last=program.channels_last,
            on_device=on_device,
        ),
    )
