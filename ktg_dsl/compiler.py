"""Spec -> Program: runtime nodes (model, optimizer, scheduler, scaler, device) in spec order,
and the edge matrix. Compiling builds models but never touches the dataset: the class count
and input shape come from the dataset's registered description.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from .components.data import DatasetInfo
from .components.gates import Gate
from .components.losses import EdgeLoss
from .errors import KtgRuntimeError, SpecError
from .graph import GraphReport, build_graph
from .registry import MODELS, OPTIMIZERS, SCHEDULERS
from .spec.api import validate_spec
from .spec.components import build, resolved_args
from .spec.schema import LABELS, NodeConfig, Spec

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass
class RuntimeNode:
    """One model and everything that trains it. ``device`` is per node so that a later engine
    can place nodes on different GPUs or processes without changing the step's contract."""

    name: str
    index: int
    model: nn.Module
    device: torch.device
    frozen: bool
    num_classes: int
    arch: str | None
    config: NodeConfig
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None  # torch.optim.lr_scheduler.LRScheduler
    scheduler_interval: str = "epoch"
    scaler: torch.amp.GradScaler | None = None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"]) if self.optimizer else 0.0


@dataclass(frozen=True)
class EdgeSlot:
    """A computed (not cut-off) edge. ``sender == receiver`` is the labels edge."""

    receiver: int
    sender: int
    gate: Gate
    loss: EdgeLoss
    scale: float = 1.0  # 1/peer count under peer_reduction: mean, else 1

    @property
    def is_labels(self) -> bool:
        return self.sender == self.receiver


@dataclass
class Program:
    spec: Spec
    nodes: OrderedDict[str, RuntimeNode]
    edges: list[EdgeSlot]
    num_classes: int
    input_shape: tuple[int, int, int]
    device: torch.device
    precision: Precision
    channels_last: bool
    steps_per_epoch: int | None = None
    report: GraphReport | None = field(default=None, repr=False)

    @property
    def epochs(self) -> int:
        return self.spec.train.epochs

    @property
    def names(self) -> list[str]:
        return list(self.nodes)

    def time(self, epoch: int, step: int | None = None) -> tuple[int, int]:
        """(t, T) of the gates at this epoch (and step, when gates run per step)."""
        if self.spec.train.gate_unit == "epoch":
            return epoch, self.epochs
        if self.steps_per_epoch is None:
            raise KtgRuntimeError("gates run per step: set program.steps_per_epoch first")
        return epoch * self.steps_per_epoch + (step or 0), self.epochs * self.steps_per_epoch

    def edge_weights(self, epoch: int, step: int | None = None) -> list[float]:
        """The weight of each edge in ``self.edges`` at this time (scale included)."""
        t, T = self.time(epoch, step)
        return [e.gate.weight(t, T) * e.scale for e in self.edges]

    def gate_weights(self, epoch: int, step: int | None = None) -> list[list[float]]:
        """The N x N matrix of edge weights (rows receivers, columns senders, diagonal the
        labels edge); 0 for cut-off edges. A per-sample gate (``correct``) shows 1: its mask
        is applied per sample in the step."""
        n = len(self.nodes)
        out = [[0.0] * n for _ in range(n)]
        for e, w in zip(self.edges, self.edge_weights(epoch, step), strict=True):
            out[e.receiver][e.sender] = w
        return out

    def edge_matrix(self) -> list[list[EdgeSlot | None]]:
        """Receiver x sender table of computed edges (None where cut off)."""
        n = len(self.nodes)
        out: list[list[EdgeSlot | None]] = [[None] * n for _ in range(n)]
        for e in self.edges:
            out[e.receiver][e.sender] = e
        return out

    def trainable(self) -> list[RuntimeNode]:
        return [n for n in self.nodes.values() if not n.frozen]


# --------------------------------------------------------------------------- devices


def resolve_device(text: str) -> torch.device:
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise KtgRuntimeError(
                f"train.device is {text!r} but CUDA is not available (set device: auto or cpu)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise KtgRuntimeError(
                f"train.device is {text!r} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return dev


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name and thread count."""
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    import contextlib
    import platform
    from pathlib import Path

    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    return platform.processor() or platform.machine()


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16: oneDNN runs bf16 convolutions and matmuls natively."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None and fn():
            return True
    return False


def resolve_precision(text: str, device: torch.device) -> Precision:
    if device.type == "cuda":
        if text == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return text  # type: ignore[return-value]
    if text == "fp16":
        raise KtgRuntimeError(
            "precision fp16 needs a CUDA GPU (it trains with a GradScaler); "
            "on this CPU use bf16 or fp32"
        )
    if text == "auto":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return text  # type: ignore[return-value]


def resolve_channels_last(switch: str, device: torch.device) -> bool:
    if switch != "auto":
        return switch == "on"
    # cuDNN and oneDNN both run convolutions fastest in NHWC (measured on this project's CPU
    # benchmark: fp32 ~15% and bf16 ~25% faster per step); without oneDNN, stay NCHW.
    return device.type == "cuda" or torch.backends.mkldnn.is_available()


COMPILE_MIN_STEPS = 20_000  # below this, compiling costs more than it saves (CPU benchmark)


def resolve_compile(switch: str, device: torch.device, total_steps: int | None) -> bool:
    if switch != "auto":
        return switch == "on"
    # Measured on the CPU benchmark: about 2 minutes to compile, then 1.3x faster steps; it
    # pays off in long runs only. Not yet measured on a GPU, so auto leaves CUDA alone.
    return device.type == "cpu" and total_steps is not None and total_steps >= COMPILE_MIN_STEPS


# --------------------------------------------------------------------------- compile


def _arch(node: NodeConfig) -> str | None:
    comp = MODELS.get(node.model.type)
    arch = comp.meta.get("arch")
    if callable(arch):
        return str(arch(resolved_args(node.model)))
    return str(arch) if arch is not None else None


def node_seed(seed: int, position: int) -> int:
    """The seed of a node's initial weights: a hash of (spec seed, node position), so that a
    node's initialisation never depends on what was built before it."""
    digest = hashlib.sha256(f"ktg-node:{seed}:{position}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: what torch.manual_seed takes


def _seeded(seed: int, fn: Callable[[], nn.Module]) -> nn.Module:
    # fork_rng restores every generator (CPU and CUDA) afterwards: building a program leaves
    # the caller's random state as it was.
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        return fn()


def compile_spec(
    spec: Spec,
    *,
    device: str | torch.device | None = None,
    precision: str | None = None,
    steps_per_epoch: int | None = None,
    data_info: DatasetInfo | None = None,
) -> Program:
    """Build the runtime program of a valid spec (raises SpecError if it is not)."""
    problems = [i for i in validate_spec(spec) if i.is_error]
    if problems:
        raise SpecError(problems)
    report = build_graph(spec)
    info = data_info or report.data_info
    if info is None or info.num_classes is None or info.input_shape is None:
        raise KtgRuntimeError(
            "the class count and input shape of the data are unknown; pass "
            "data_info=DatasetInfo(num_classes, (C, H, W)) to compile_spec"
        )
    dev = (
        device if isinstance(device, torch.device) else resolve_device(device or spec.train.device)
    )
    prec = resolve_precision(precision or spec.train.precision, dev)
    channels_last = resolve_channels_last(spec.train.channels_last, dev)

    nodes: OrderedDict[str, RuntimeNode] = OrderedDict()
    channels = info.input_shape[0]
    for position, (name, cfg) in enumerate(spec.nodes.items()):
        classes = cfg.num_classes or info.num_classes

        def make(cfg: NodeConfig = cfg, classes: int = classes) -> nn.Module:
            module: nn.Module = build(cfg.model, num_classes=classes, in_channels=channels)
            return module

        model = _seeded(node_seed(spec.seed, position), make)
        if not isinstance(model, nn.Module):
            raise KtgRuntimeError(
                f"model '{cfg.model.type}' of node '{name}' returned "
                f"{type(model).__name__}, not a torch.nn.Module"
            )
        model = model.to(dev)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        total = steps_per_epoch * spec.train.epochs if steps_per_epoch else None
        if resolve_compile(spec.train.compile, dev, total):
            model.compile()  # in place: state_dict keys stay those of the plain model
        frozen = name in report.frozen
        node = RuntimeNode(name, position, model, dev, frozen, classes, _arch(cfg), cfg)
        if frozen:
            model.eval()
            model.requires_grad_(False)
        else:
            _attach_training(spec, node, dev, prec, steps_per_epoch)
        nodes[name] = node

    index = {n: i for i, n in enumerate(nodes)}
    peers: dict[str, int] = {}
    for e in report.edges:
        gate = report.graph.edges[e.sender, e.receiver]["gate"]
        if not e.is_labels and not gate.never_open:
            peers[e.receiver] = peers.get(e.receiver, 0) + 1
    edges: list[EdgeSlot] = []
    for e in report.edges:
        gate = report.graph.edges[e.sender, e.receiver]["gate"]
        if gate.never_open or e.receiver in report.frozen:
            continue  # a cut-off edge is exactly no edge; nothing flows into a frozen node
        r = index[e.receiver]
        s = r if e.sender == LABELS else index[e.sender]
        scale = 1.0
        if spec.train.peer_reduction == "mean" and not e.is_labels:
            scale = 1.0 / peers[e.receiver]
        edges.append(EdgeSlot(r, s, gate, build(e.loss), scale))
    edges.sort(key=lambda e: (e.receiver, e.sender))
    return Program(
        spec,
        nodes,
        edges,
        info.num_classes,
        info.input_shape,
        dev,
        prec,
        channels_last,
        steps_per_epoch,
        report,
    )


def _attach_training(
    spec: Spec, node: RuntimeNode, dev: torch.device, prec: Precision, steps_per_epoch: int | None
) -> None:
    cfg = node.config
    opt_ref = cfg.optimizer or spec.defaults.optimizer
    comp = OPTIMIZERS.get(opt_ref.type)
    fused, foreach = _optimizer_impl(spec.train.fused_optimizer)
    node.optimizer = comp.build(
        opt_ref.args, params=list(node.model.parameters()), fused=fused, foreach=foreach
    )
    sched_ref = cfg.scheduler or spec.defaults.scheduler
    sched = SCHEDULERS.get(sched_ref.type)
    interval = sched.meta.get("interval", "epoch")
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
    if prec == "fp16":
        # One scaler per node, as the original: an overflow skips only that node's step.
        node.scaler = torch.amp.GradScaler("cuda")


def _optimizer_impl(switch: str) -> tuple[bool | None, bool | None]:
    """(fused, foreach) asked of the optimizer: one fused kernel per step where torch has it
    (SGD, Adam, AdamW, on CPU and CUDA), the multi-tensor path otherwise; ``off``: torch's
    per-parameter loop."""
    if switch == "off":
        return None, False
    return True, True
