"""A spec's data: the dataset built from its registration, the program compiled for it on this
host, and its training and evaluation batches on the program's device. Shared by ``ktg train``,
``ktg search`` and ``ktg bench``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..check import check_spec
from ..compiler import compile_program
from ..components.data import DatasetInfo
from ..components.data.bundle import DataBundle, TensorSplit
from ..components.data.loader import TensorBatches, eval_batches, train_batches
from ..components.data.two_views import TwoViewBatches
from ..engine.program import Program
from ..engine.ssl import KnnData
from ..errors import KtgRuntimeError, SpecError
from ..graph import GraphReport
from ..registry import DATASETS
from ..spec.schema import Spec
from .batch_need import check_batches
from .env import fits_on_device, resolve_target

if TYPE_CHECKING:
    from .distributed import Cluster


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


def bundle_facts(bundle: DataBundle) -> dict[str, Any]:
    """What a node file records of the data (``checkpoint.data_facts``): the loader feeds
    uint8 images divided by 255, float images as stored, then normalised."""
    import torch

    from .checkpoint import data_facts

    scale = 255.0 if bundle.train.images.dtype == torch.uint8 else 1.0
    return data_facts(bundle.class_names, bundle.input_shape, bundle.mean, bundle.std, scale)


def program_for(
    spec: Spec, graph: GraphReport | None, bundle: DataBundle, cluster: Cluster | None = None
) -> Program:
    """The spec compiled for this data on this host (``graph``: the spec's checked graph;
    None checks the spec first); on a mesh, this rank's nodes for real and the others' on
    the meta device."""
    if graph is None:
        graph = checked(spec)
    steps = steps_per_epoch(spec, bundle)
    placed = {name: node.device for name, node in spec.nodes.items() if node.device}
    target = resolve_target(
        spec.train,
        device=cluster.device if cluster else None,
        steps_per_epoch=steps,
        node_devices=placed,
        remote=cluster.remote if cluster else frozenset(),
    )
    info = bundle_info(bundle)
    return compile_program(spec, graph, target, data_info=info, steps_per_epoch=steps)


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
    train: TensorBatches | TwoViewBatches  # two views per sample: a self-supervised graph
    eval: TensorBatches | KnnData  # with the memory bank: a self-supervised graph


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


def make_batches(
    spec: Spec, bundle: DataBundle, program: Program, cluster: Cluster | None = None
) -> Batches:
    """Shuffled, augmented training batches and in-order evaluation batches (on a mesh, this
    replica's part of every batch)."""
    on_device = _on_device(spec, bundle, program)
    shard = cluster.shard if cluster else (0, 1)
    batch = spec.data.batch_size
    # what a loss or a BatchNorm needs per step, against the smallest step: said before training
    check_batches(program, len(bundle.train), batch, spec.data.drop_last, shard[1])

    def in_order(split: TensorSplit, shard: tuple[int, int] = shard) -> TensorBatches:
        return eval_batches(
            split,
            spec.data.eval_batch_size or 4 * batch,
            mean=bundle.mean,
            std=bundle.std,
            device=program.device,
            channels_last=program.channels_last,
            on_device=on_device,
            shard=shard,
        )

    if spec.self_supervised is not None:  # kNN: the whole training part is the memory bank
        knn = KnnData(in_order(bundle.train, (0, 1)), in_order(bundle.eval, (0, 1)))
        return _two_view_batches(spec, bundle, program, on_device, knn, shard)
    evaluation = in_order(bundle.eval)
    return Batches(
        train_batches(
            bundle,
            batch,
            seed=spec.seed,
            device=program.device,
            drop_last=spec.data.drop_last,
            channels_last=program.channels_last,
            on_device=on_device,
            shard=shard,
        ),
        evaluation,
    )


def eval_label(spec: Spec, split: str) -> str:
    """How tables name the evaluation: the split, as kNN on it in a self-supervised graph."""
    return f"kNN {split}" if spec.self_supervised is not None else split


def _two_view_batches(
    spec: Spec,
    bundle: DataBundle,
    program: Program,
    on_device: bool,
    knn: KnnData,
    shard: tuple[int, int],
) -> Batches:
    """A self-supervised graph's batches: two augmented views per sample, and ``knn`` (the
    training part unaugmented and in order as memory bank, then the evaluated part)."""
    assert spec.self_supervised is not None
    steps = [s.model_dump() for s in spec.self_supervised.augment]
    views = TwoViewBatches(
        bundle,
        spec.data.batch_size,
        steps,
        seed=spec.seed,
        device=program.device,
        drop_last=spec.data.drop_last,
        on_device=on_device,
        shard=shard,
    )
    return Batches(views, knn)


def compile_spec(
    spec: Spec,
    *,
    device: str | torch.device | None = None,
    precision: str | None = None,
    steps_per_epoch: int | None = None,
    data_info: DatasetInfo | None = None,
) -> Program:
    """Check a spec, resolve its ``auto`` values on this host and compile it (raises
    SpecError if the spec has errors)."""
    graph = checked(spec)
    info = data_info or graph.data_info
    if info is None or info.num_classes is None or info.input_shape is None:
        raise KtgRuntimeError(
            "the class count and input shape of the data are unknown; pass "
            "data_info=DatasetInfo(num_classes, (C, H, W)) to compile_spec"
        )
    target = resolve_target(
        spec.train, device=device, precision=precision, steps_per_epoch=steps_per_epoch
    )
    return compile_program(spec, graph, target, data_info=info, steps_per_epoch=steps_per_epoch)


def checked(spec: Spec) -> GraphReport:
    """The spec's checked graph (raises SpecError with every error)."""
    report = check_spec(spec)
    if report.errors or report.graph is None:
        raise SpecError(report.errors)
    return report.graph
