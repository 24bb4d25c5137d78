"""(Spec, GraphReport, Target) -> Program: runtime nodes (model, optimizer, scheduler, scaler,
device) in spec order, and the computed edges. The compiler takes a checked graph report (its
gates and losses already built; it does not check again) and the target the host resolved
(``run.env``; it does not probe hardware). Compiling builds models but never touches the
dataset: the class count and input shape come from the dataset's registered description, or
the caller.

``ktg_dsl.compile_spec(spec)`` (``run.data``) is the public convenience: check, resolve
``auto`` on this host, compile.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from .components.data import DatasetInfo
from .contracts import EdgeLoss
from .engine.program import EdgeSlot, KnnSettings, Precision, Program, RuntimeNode, Target
from .engine.taps import TapError, tap_shapes
from .errors import KtgRuntimeError
from .graph import GraphEdge, GraphReport, loss_target
from .registry import OPTIMIZERS, SCHEDULERS
from .spec.components import build
from .spec.schema import LABELS, NodeConfig, OptimizerRef, Spec

__all__ = [
    "Precision",
    "Program",
    "RuntimeNode",
    "Target",
    "compile_program",
    "make_optimizer",
    "node_seed",
]

OptimizerImpl = Literal["fused", "loop", "default"]
T = TypeVar("T")


def node_seed(seed: int, position: int) -> int:
    """The seed of a node's initial weights: a hash of (spec seed, node position), so that a
    node's initialisation never depends on what was built before it."""
    digest = hashlib.sha256(f"ktg-node:{seed}:{position}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: what torch.manual_seed takes


def _seeded(seed: int, fn: Callable[[], T]) -> T:
    # fork_rng restores every generator (CPU and CUDA) afterwards: building a program leaves
    # the caller's random state as it was.
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        return fn()


def make_optimizer(ref: OptimizerRef, params: Iterable[Any], impl: OptimizerImpl) -> Any:
    """The optimizer a reference names. ``fused``: one fused kernel per step where torch has
    it (SGD, Adam, AdamW on CPU and CUDA), the multi-tensor (foreach) path otherwise;
    ``loop``: torch's per-parameter loop; ``default``: whatever torch picks by itself."""
    fused, foreach = {"fused": (True, True), "loop": (None, False), "default": (None, None)}[impl]
    return OPTIMIZERS.get(ref.type).build(
        ref.args, params=list(params), fused=fused, foreach=foreach
    )


def _build_model(spec: Spec, name: str, position: int, classes: int, channels: int) -> nn.Module:
    cfg = spec.nodes[name]

    def make() -> nn.Module:
        module: nn.Module = build(cfg.model, num_classes=classes, in_channels=channels)
        return _with_head(spec, name, module)

    model = _seeded(node_seed(spec.seed, position), make)
    if not isinstance(model, nn.Module):
        raise KtgRuntimeError(
            f"model '{cfg.model.type}' of node '{name}' returned "
            f"{type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _with_head(spec: Spec, name: str, model: nn.Module) -> nn.Module:
    """A self-supervised node's model: its encoder and projector (components/models/heads)."""
    ssl = spec.self_supervised
    if ssl is None or not isinstance(model, nn.Module):
        return model
    from .components.models.heads import HeadError, with_projector

    try:
        return with_projector(model, ssl.head.classifier, ssl.head.hidden, ssl.head.dim)
    except HeadError as exc:
        raise KtgRuntimeError(
            f"node '{name}': {exc}; name its classifier in self_supervised.head.classifier"
        ) from None


def _knn(spec: Spec) -> KnnSettings | None:
    ssl = spec.self_supervised
    if ssl is None:
        return None
    return KnnSettings(ssl.knn.k, ssl.knn.weighted, ssl.knn.temperature, ssl.linear_probe)


def compile_program(
    spec: Spec,
    graph: GraphReport,
    target: Target,
    *,
    data_info: DatasetInfo,
    steps_per_epoch: int | None = None,
) -> Program:
    """Build the runtime program of a checked spec for ``target``."""
    if data_info.num_classes is None or data_info.input_shape is None:
        raise KtgRuntimeError("compile_program needs the data's class count and input shape")
    nodes: OrderedDict[str, RuntimeNode] = OrderedDict()
    for position, (name, cfg) in enumerate(spec.nodes.items()):
        classes = cfg.num_classes or data_info.num_classes
        device = target.node_devices.get(name, target.device)
        if name in target.remote:
            device = torch.device("meta")
        with device if device.type == "meta" else contextlib.nullcontext():
            model = _build_model(spec, name, position, classes, data_info.input_shape[0])
        model = model.to(device)
        if target.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if target.compile and device.type != "meta":
            model.compile()  # in place: state_dict keys stay those of the plain model
        frozen = name in graph.frozen
        ssl = spec.self_supervised
        out = ssl.head.dim if ssl else classes  # a self-supervised model outputs projections
        node = RuntimeNode(name, position, model, device, frozen, out, cfg)
        node.taps = {t: f"encoder.{p}" if ssl else p for t, p in (cfg.taps or {}).items()}
        node.features = "encoder" if ssl else None
        nodes[name] = node
    edges = _edge_slots(spec, graph, nodes, target, data_info)
    for node in nodes.values():
        if node.frozen:
            node.model.eval()
            node.model.requires_grad_(False)
        elif node.device.type != "meta":
            _attach_training(spec, node, target, steps_per_epoch)
    return Program(
        nodes,
        edges,
        data_info.num_classes,
        data_info.input_shape,
        target.device,
        target.precision,
        target.channels_last,
        spec.train.epochs,
        gate_unit=spec.train.gate_unit,
        grad_clip=spec.train.grad_clip,
        steps_per_epoch=steps_per_epoch,
        spec=spec,
        knn=_knn(spec),
    )


def _edge_slots(
    spec: Spec,
    graph: GraphReport,
    nodes: OrderedDict[str, RuntimeNode],
    target: Target,
    info: DatasetInfo,
) -> list[EdgeSlot]:
    """The computed edges: cut-off edges are exactly no edge, and nothing flows into a
    frozen node. Feature edges get their taps' shapes checked and their adapters built (into
    the receiving node). Sorted by (receiver, sender), logits edges first."""
    index = {n: i for i, n in enumerate(spec.node_names)}
    live = [e for e in graph.edges if not e.closed and e.receiver not in graph.frozen]
    peers: dict[str, int] = {}
    for e in graph.edges:  # the original averages over its (logits) peer edges
        if not e.is_labels and not e.closed and not e.on_features:
            peers[e.receiver] = peers.get(e.receiver, 0) + 1
    shapes = _TapShapes(spec, nodes, info)
    edges = []
    for e in live:
        if e.gate is None or e.loss is None:  # a checked report built every one
            raise KtgRuntimeError(f"edge {e.key}: its gate or loss did not build (check it)")
        r = index[e.receiver]
        scale = 1.0
        if spec.train.peer_reduction == "mean" and not e.is_labels and not e.on_features:
            scale = 1.0 / peers[e.receiver]
        s = r if e.sender == LABELS else index[e.sender]
        loss = e.loss
        adapter = (
            _adapter(spec, e, loss, shapes, nodes[e.receiver], target) if e.on_features else None
        )
        views = loss_target(e.loss_ref) == "views"
        edges.append(
            EdgeSlot(r, s, e.gate, loss, scale, e.receiver_tap, e.sender_tap, adapter, views)
        )
    for name, node in nodes.items():
        node.tap_shapes = shapes.known(name)
    return sorted(
        edges, key=lambda e: (e.receiver, e.sender, e.receiver_tap or "", e.sender_tap or "")
    )


class _TapShapes:
    """Each tapped node's tap shapes, found once by a forward on the meta device."""

    def __init__(self, spec: Spec, nodes: OrderedDict[str, RuntimeNode], info: DatasetInfo):
        self.spec, self.nodes, self.info = spec, nodes, info
        self._shapes: dict[str, dict[str, tuple[int, ...]]] = {}

    def known(self, node: str) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes.get(node, {}))

    def of(self, node: str, tap: str) -> tuple[int, ...]:
        if node not in self._shapes:
            runtime = self.nodes[node]
            assert self.info.input_shape is not None
            cfg = self.spec.nodes[node]  # taps name modules of the model as registered
            with torch.device("meta"):
                model = build(
                    cfg.model,
                    num_classes=cfg.num_classes or self.info.num_classes or runtime.num_classes,
                    in_channels=self.info.input_shape[0],
                )
            try:
                self._shapes[node] = tap_shapes(model, dict(cfg.taps or {}), self.info.input_shape)
            except TapError as exc:
                raise KtgRuntimeError(f"nodes.{node}.taps: {exc}") from None
        return self._shapes[node][tap]


def _adapter(
    spec: Spec,
    e: GraphEdge,
    loss: EdgeLoss,
    shapes: _TapShapes,
    receiver: RuntimeNode,
    target: Target,
) -> nn.Module | None:
    """The edge's adapter (a hint's regressor), registered in the receiving node so that its
    optimizer trains it and its checkpoint holds it; shapes checked first."""
    assert e.receiver_tap is not None and e.sender_tap is not None
    r, s = shapes.of(e.receiver, e.receiver_tap), shapes.of(e.sender, e.sender_tap)
    problem = loss.check_shapes(r, s)
    if problem:
        raise KtgRuntimeError(f"edge {e.sender_end} -> {e.receiver_end}: {problem}")
    make = loss.make_adapter
    key = f"{e.sender}_{e.sender_tap}_to_{e.receiver_tap}"
    adapter: nn.Module | None = _seeded(
        node_seed(spec.seed, 10_000 + receiver.index * 1000 + len(receiver.adapters)),
        lambda: make(r, s),
    )
    if adapter is None:
        return None
    adapter = adapter.to(receiver.device)
    if target.channels_last and len(r) == 3:
        adapter = adapter.to(memory_format=torch.channels_last)
    receiver.adapters[key] = adapter
    return adapter


def _attach_training(
    spec: Spec, node: RuntimeNode, target: Target, steps_per_epoch: int | None
) -> None:
    cfg: NodeConfig = node.config
    impl: OptimizerImpl = "loop" if spec.train.fused_optimizer == "off" else "fused"
    node.optimizer = make_optimizer(
        cfg.optimizer or spec.defaults.optimizer, node.parameters(), impl
    )
    sched_ref = cfg.scheduler or spec.defaults.scheduler
    sched = SCHEDULERS.get(sched_ref.type)
    interval = sched.meta.interval
    if interval == "step" and steps_per_epoch is None:
        raise KtgRuntimeError(
            f"scheduler '{sched_ref.type}' of node '{node.name}' steps every "
            "batch: compile_spec needs steps_per_epoch"
        )
    node.scheduler = sched.build(
        sched_ref.args,
        optimizer=node.optimizer,
        epochs=spec.train.epochs,
        steps_per_epoch=steps_per_epoch or 1,
    )
    node.scheduler_interval = interval
    if target.precision == "fp16":
        # One scaler per node, as the original: an overflow skips only that node's step.
        node.scaler = torch.amp.GradScaler(node.device.type)
