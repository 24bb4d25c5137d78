"""``ktg bench``: images per second of the engine against the original KTG loop, side by side
in one process, interleaved (A B C ... A B C ...) so that machine noise hits every variant alike.

Variants, all starting from the same initial weights and fed the same batches:

* ``baseline``: the original algorithm written plainly, as the reference repository runs it:
  per-node forward, a Python loop over edges, a per-node backward and optimizer step (through a
  GradScaler on CUDA), ``.item()`` of loss and accuracy every step; autocast fp16 on CUDA, fp32
  on the CPU; contiguous tensors, default optimizer implementation;
* ``engine``: ``Engine.train_step`` at the spec's precision (``auto`` resolved) and at fp32;
* ``ideal``: the sum of each model's own isolated train step (forward, cross-entropy, backward,
  step) at the engine's precision and memory format: what N models cost with no graph at all;
* ``epoch``: the engine at ``auto`` fed by the real loader (gather, augmentation,
  normalisation), to show whether data loading hides behind the step.

Ratios are of medians over rounds. Peak memory: CUDA max allocated per variant; on the CPU the
process's peak RSS (VmHWM, reset before each variant where Linux allows).
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .compiler import Program, compile_spec, make_optimizer
from .components.data import DatasetInfo
from .engine import Engine
from .errors import KtgRuntimeError
from .graph import data_info
from .run.env import device_name
from .spec.schema import Spec

Step = Callable[[torch.Tensor, torch.Tensor], None]


@dataclass
class Variant:
    name: str
    step: Step
    batch: int
    sync: Callable[[], None]
    times: list[float] = field(default_factory=list)  # seconds per step, one per round
    peak_bytes: int = 0

    @property
    def images_per_s(self) -> float:
        return self.batch / statistics.median(self.times) if self.times else 0.0


def _sync_for(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


# --------------------------------------------------------------------------- the original loop


def baseline_step(program: Program) -> Step:
    """The reference repository's train_on_batch, for the compiled graph's edges."""
    nodes = list(program.nodes.values())
    dev = program.device
    models = [copy.deepcopy(n.model).to(memory_format=torch.contiguous_format) for n in nodes]
    opts: list[Any] = []
    for node, model in zip(nodes, models, strict=True):
        if node.frozen:
            opts.append(None)
            continue
        ref = node.config.optimizer or program.spec.defaults.optimizer
        opts.append(make_optimizer(ref, model.parameters(), "default"))
    cuda = dev.type == "cuda"
    scalers = [torch.amp.GradScaler("cuda", enabled=cuda) for _ in nodes]
    matrix = program.edge_matrix()
    meters: list[list[float]] = [[0.0, 0.0] for _ in nodes]
    epochs = program.epochs
    epoch = epochs // 2  # mid-training: rising and falling gates are both open

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        outputs = []
        for model in models:
            model.train()
            with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
                outputs.append(model(x))
        for i, _node in enumerate(nodes):
            if opts[i] is None:
                continue
            losses = []
            loss = None
            with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
                for j in range(len(nodes)):
                    edge = matrix[i][j]
                    if edge is None:
                        continue
                    w = edge.gate.weight(epoch, epochs)
                    if j == i:
                        loss = F.cross_entropy(outputs[i], y) * w
                    else:
                        temp = getattr(edge.loss, "temperature", 1.0)
                        q = F.log_softmax(outputs[i] / temp, dim=1)
                        p = F.softmax(outputs[j].detach() / temp, dim=1)
                        losses.append(
                            (p * (p.clamp_min(1e-10).log() - q)).sum(1).mean() * temp * temp * w
                        )
                if losses:
                    peer = torch.stack(losses).sum()
                    loss = peer if loss is None else loss + peer
            if loss is not None and loss.item() != 0:
                scalers[i].scale(loss).backward()
                scalers[i].step(opts[i])
                opts[i].zero_grad()
                scalers[i].update()
            top1 = (outputs[i].argmax(1) == y).float().mean() * 100
            meters[i][0] += top1.item()
            meters[i][1] += float(loss.item()) if loss is not None else 0.0

    return step


# --------------------------------------------------------------------------- the ideal


def ideal_step(program: Program) -> Step:
    """Each model trained alone on the labels, one after another: no graph at all."""
    nodes = [n for n in program.nodes.values() if not n.frozen]
    models = [copy.deepcopy(n.model) for n in nodes]
    opts = []
    for node, model in zip(nodes, models, strict=True):
        ref = node.config.optimizer or program.spec.defaults.optimizer
        opts.append(make_optimizer(ref, model.parameters(), "default"))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(program.precision)
    dev = program.device
    scaler = torch.amp.GradScaler("cuda", enabled=program.precision == "fp16")

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        for model, opt in zip(models, opts, strict=True):
            model.train()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(model(x).float(), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return step


def engine_step(program: Program) -> Step:
    engine = Engine(program)
    epoch = program.epochs // 2

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        engine.train_step(x, y, epoch)

    return step


# --------------------------------------------------------------------------- memory


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # not Linux: the peak is the process's since it started
        Path("/proc/self/clear_refs").write_text("5")


def _peak(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# --------------------------------------------------------------------------- running


def measure(
    variants: list[Variant],
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    rounds: int,
    warmup: int,
    device: torch.device,
    report: Callable[[str], None],
) -> None:
    for v in variants:
        for i in range(warmup):
            v.step(*batches[i % len(batches)])
        v.sync()
    for r in range(rounds):
        for v in variants:
            _reset_peak(device)
            v.sync()
            tick = time.perf_counter()
            for i in range(steps):
                v.step(*batches[i % len(batches)])
            v.sync()
            v.times.append((time.perf_counter() - tick) / steps)
            v.peak_bytes = max(v.peak_bytes, _peak(device))
        report(
            f"round {r + 1}/{rounds}: "
            + "  ".join(f"{v.name} {v.batch / v.times[-1]:.1f} img/s" for v in variants)
        )


def epoch_variant(program: Program, spec: Spec, steps: int) -> Variant:
    """The engine at auto fed by the real loader (augmentation and normalisation included)."""
    from .run.data import load_bundle, make_batches

    loader = make_batches(spec, load_bundle(spec), program).train
    engine = Engine(program)
    epoch = program.epochs // 2
    state: dict[str, Any] = {"it": iter(loader), "epoch": 0}

    def step(_x: torch.Tensor, _y: torch.Tensor) -> None:
        try:
            x, y = next(state["it"])
        except StopIteration:
            state["epoch"] += 1
            loader.set_epoch(state["epoch"])
            state["it"] = iter(loader)
            x, y = next(state["it"])
        engine.train_step(x, y, epoch)

    return Variant("epoch(auto)", step, spec.data.batch_size, _sync_for(program.device))


def random_batches(
    info: DatasetInfo, batch: int, device: torch.device, n: int = 4
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A few fixed random batches of the data's shape, on the device (every variant gets the
    same ones)."""
    assert info.num_classes is not None and info.input_shape is not None
    g = torch.Generator().manual_seed(0)
    return [
        (
            torch.randn(batch, *info.input_shape, generator=g).to(device),
            torch.randint(0, info.num_classes, (batch,), generator=g).to(device),
        )
        for _ in range(n)
    ]


def _compiled_variant(
    spec: Spec,
    info: DatasetInfo,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    report: Callable[[str], None],
) -> Variant:
    """The engine with ``train.compile: on``; its first (compiling) step is timed apart."""
    train = spec.train.model_copy(update={"compile": "on"})
    compiled = compile_spec(spec.model_copy(update={"train": train}), data_info=info)
    sync = _sync_for(compiled.device)
    variant = Variant(
        f"engine({compiled.precision},compiled)",
        engine_step(compiled),
        spec.data.batch_size,
        sync,
    )
    tick = time.perf_counter()
    variant.step(*batches[0])  # the first call compiles
    sync()
    report(f"torch.compile: first step took {time.perf_counter() - tick:.1f} s")
    return variant


def run_bench(
    spec: Spec,
    *,
    steps: int = 10,
    rounds: int = 3,
    warmup: int = 3,
    with_compile: bool = False,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    info = data_info(spec)
    if info is None or info.num_classes is None or info.input_shape is None:
        raise KtgRuntimeError(
            "ktg bench needs a dataset whose shape is known without loading (e.g. synthetic)"
        )
    torch.manual_seed(spec.seed)
    auto = compile_spec(spec, data_info=info)
    fp32 = compile_spec(spec, data_info=info, precision="fp32")
    dev, batch = auto.device, spec.data.batch_size
    batches = random_batches(info, batch, dev)
    sync = _sync_for(dev)
    variants = [
        Variant(
            "baseline",
            baseline_step(compile_spec(spec, data_info=info, precision="fp32")),
            batch,
            sync,
        ),
        Variant(f"engine({auto.precision})", engine_step(auto), batch, sync),
        Variant("engine(fp32)", engine_step(fp32), batch, sync),
        Variant(f"ideal({auto.precision})", ideal_step(auto), batch, sync),
        Variant("ideal(fp32)", ideal_step(fp32), batch, sync),
        epoch_variant(compile_spec(spec, data_info=info), spec, steps),
    ]
    if with_compile:
        variants.append(_compiled_variant(spec, info, batches, report))
    report(
        f"ktg bench: {spec.name}: nodes {[n.config.model.type for n in auto.nodes.values()]}, "
        f"batch {batch}, input {info.input_shape}, {info.num_classes} classes, device {dev} "
        f"({device_name(dev)}), engine precision {auto.precision}, channels_last "
        f"{auto.channels_last}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    measure(variants, batches, steps, rounds, warmup, dev, report)
    return _result(spec, auto, variants, steps, rounds)


def _result(
    spec: Spec, auto: Program, variants: list[Variant], steps: int, rounds: int
) -> dict[str, Any]:
    by = {v.name: v for v in variants}
    eng_auto, eng_fp32 = by[f"engine({auto.precision})"], by["engine(fp32)"]
    ideal_auto, ideal_fp32 = by[f"ideal({auto.precision})"], by["ideal(fp32)"]
    base = by["baseline"].images_per_s
    return {
        "spec": spec.name,
        "date": time.strftime("%Y-%m-%d"),
        "device": str(auto.device),
        "device_name": device_name(auto.device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": spec.data.batch_size,
        "steps": steps,
        "rounds": rounds,
        "precision_auto": auto.precision,
        "channels_last": auto.channels_last,
        "images_per_s": {v.name: round(v.images_per_s, 2) for v in variants},
        "ms_per_step": {v.name: round(1000 * statistics.median(v.times), 2) for v in variants},
        "peak_mb": {v.name: round(v.peak_bytes / 2**20, 1) for v in variants},
        "ratios": {
            "engine_auto/baseline": round(eng_auto.images_per_s / base, 3),
            "engine_fp32/baseline": round(eng_fp32.images_per_s / base, 3),
            "engine_auto/ideal_auto": round(eng_auto.images_per_s / ideal_auto.images_per_s, 3),
            "engine_fp32/ideal_fp32": round(eng_fp32.images_per_s / ideal_fp32.images_per_s, 3),
            "epoch/step (auto)": round(by["epoch(auto)"].images_per_s / eng_auto.images_per_s, 3),
        },
    }


def format_result(result: dict[str, Any]) -> str:
    lines = [f"{'variant':<16}{'img/s':>10}{'ms/step':>10}{'peak MB':>10}"]
    for name, ips in result["images_per_s"].items():
        lines.append(
            f"{name:<16}{ips:>10.1f}{result['ms_per_step'][name]:>10.1f}"
            f"{result['peak_mb'][name]:>10.1f}"
        )
    lines.append("")
    lines += [f"{k:<26}{v:>8.3f}" for k, v in result["ratios"].items()]
    return "\n".join(lines)
