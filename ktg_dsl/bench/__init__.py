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

A self-supervised graph (a ``self_supervised:`` section) gets the same variants on batches of two
views per sample ``[B, 2, C, H, W]``, as ``TwoViewBatches`` feeds ``ktg train``: the original's
SimCLR loop as baseline, each node's isolated SimCLR step as ideal (``ssl.py``), the
self-supervised engine, and the epoch with the real two-view loader (kornia augmentation).

Ratios are of medians over rounds. Peak memory: CUDA max allocated per variant; on the CPU the
process's peak RSS (VmHWM, reset before each variant where Linux allows).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from ..components.data import DatasetInfo
from ..engine.program import Program
from ..errors import KtgRuntimeError
from ..graph import data_info
from ..graph.data import training_size
from ..run.data import compile_spec
from ..run.env import device_name
from ..run.threads import thread_record, thread_text
from ..spec.schema import Spec
from .features import feature_programs, feature_ratios
from .measure import Variant, _sync_for, measure
from .ssl import SslBaseline, random_view_batches, ssl_ideal_step
from .variants import baseline_step, engine_step, epoch_variant, ideal_step

__all__ = ["format_result", "random_batches", "run_bench"]


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
    compiled = compile_spec(
        spec.model_copy(update={"train": train}),
        data_info=info,
        steps_per_epoch=steps_per_epoch(spec),
    )
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


def steps_per_epoch(spec: Spec) -> int:
    """Training steps per epoch, as the dataset's registration knows its training part without
    loading it; 100 where it does not (the step is timed at mid-training either way: only a
    per-step schedule's value at that point depends on it)."""
    size = training_size(spec)
    batch = spec.data.batch_size
    if size is None:
        return 100
    return max(1, size // batch if spec.data.drop_last else -(-size // batch))


KINDS = ("baseline", "engine", "ideal", "epoch", "features")  # what --variants may name


def run_bench(
    spec: Spec,
    *,
    steps: int = 10,
    rounds: int = 3,
    warmup: int = 3,
    with_compile: bool = False,
    kinds: tuple[str, ...] = KINDS,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure the variants of ``kinds`` (all by default) side by side."""
    info = data_info(spec)
    if info is None or info.num_classes is None or info.input_shape is None:
        raise KtgRuntimeError(
            "ktg bench needs a dataset whose shape is known without loading (e.g. synthetic)"
        )
    torch.manual_seed(spec.seed)
    per_epoch = steps_per_epoch(spec)  # a scheduler or gate that steps every batch needs it
    auto = compile_spec(spec, data_info=info, steps_per_epoch=per_epoch)
    dev, batch = auto.device, spec.data.batch_size
    ssl = auto.knn is not None  # self-supervised: two views per sample, SimCLR's loop
    batches = (random_view_batches if ssl else random_batches)(info, batch, dev)
    baseline = SslBaseline if ssl else baseline_step
    ideal = ssl_ideal_step if ssl else ideal_step
    sync = _sync_for(dev)

    def fp32() -> Program:
        return compile_spec(spec, data_info=info, precision="fp32", steps_per_epoch=per_epoch)

    variants: list[Variant] = []
    if "baseline" in kinds:
        variants.append(Variant("baseline", baseline(fp32()), batch, sync))
    if "engine" in kinds:
        variants.append(Variant(f"engine({auto.precision})", engine_step(auto), batch, sync))
        if auto.precision != "fp32" or "baseline" in kinds or "ideal" in kinds:
            variants.append(Variant("engine(fp32)", engine_step(fp32()), batch, sync))
    if "ideal" in kinds:
        variants.append(Variant(f"ideal({auto.precision})", ideal(auto), batch, sync))
        variants.append(Variant("ideal(fp32)", ideal(fp32()), batch, sync))
    if "epoch" in kinds:
        program = compile_spec(spec, data_info=info, steps_per_epoch=per_epoch)
        variants.append(epoch_variant(program, spec, steps))
    if "features" in kinds:
        for name, program in feature_programs(spec, info, per_epoch).items():
            variants.append(Variant(name, engine_step(program), batch, sync))
    if with_compile:
        variants.append(_compiled_variant(spec, info, batches, report))
    report(
        f"ktg bench: {spec.name}{' (self-supervised, two views)' if ssl else ''}: nodes "
        f"{[n.config.model.type for n in auto.nodes.values()]}, "
        f"batch {batch}, input {info.input_shape}, {info.num_classes} classes, device {dev} "
        f"({device_name(dev)}), engine precision {auto.precision}, channels_last "
        f"{auto.channels_last}, torch {torch.__version__}, {thread_text()}"
    )
    measure(variants, batches, steps, rounds, warmup, dev, report)
    return _result(spec, auto, variants, steps, rounds)


def _ratio(by: dict[str, Variant], name: str, a: str, b: str) -> dict[str, float]:
    """``{name: a/b}`` of images/s, when both variants were measured."""
    if a in by and b in by and by[b].images_per_s:
        return {name: round(by[a].images_per_s / by[b].images_per_s, 3)}
    return {}


def _result(
    spec: Spec, auto: Program, variants: list[Variant], steps: int, rounds: int
) -> dict[str, Any]:
    by = {v.name: v for v in variants}
    p = auto.precision
    ratios = {
        **_ratio(by, "engine_auto/baseline", f"engine({p})", "baseline"),
        **_ratio(by, "engine_fp32/baseline", "engine(fp32)", "baseline"),
        **_ratio(by, "engine_auto/ideal_auto", f"engine({p})", f"ideal({p})"),
        **_ratio(by, "engine_fp32/ideal_fp32", "engine(fp32)", "ideal(fp32)"),
        **_ratio(by, "epoch/step (auto)", "epoch(auto)", f"engine({p})"),
    }
    if f"engine({p})" in by:
        ratios.update(feature_ratios({v.name: v.images_per_s for v in variants}, f"engine({p})"))
    return {
        "spec": spec.name,
        "date": time.strftime("%Y-%m-%d"),
        "device": str(auto.device),
        "device_name": device_name(auto.device),
        "torch": torch.__version__,
        **thread_record(),
        "batch": spec.data.batch_size,
        "steps": steps,
        "rounds": rounds,
        "precision_auto": auto.precision,
        "channels_last": auto.channels_last,
        "images_per_s": {v.name: round(v.images_per_s, 2) for v in variants},
        "ms_per_step": {v.name: round(1000 * statistics.median(v.times), 2) for v in variants},
        "peak_mb": {v.name: round(v.peak_bytes / 2**20, 1) for v in variants},
        "ratios": ratios,
    }


def format_result(result: dict[str, Any]) -> str:
    threads = result.get("threads")
    lines = [
        f"measured with {threads} thread{'s' if threads != 1 else ''} ({result.get('threads_why')})"
    ]
    lines.append(f"{'variant':<24}{'img/s':>10}{'ms/step':>10}{'peak MB':>10}")
    for name, ips in result["images_per_s"].items():
        lines.append(
            f"{name:<24}{ips:>10.1f}{result['ms_per_step'][name]:>10.1f}"
            f"{result['peak_mb'][name]:>10.1f}"
        )
    lines.append("")
    lines += [f"{k:<26}{v:>8.3f}" for k, v in result["ratios"].items()]
    return "\n".join(lines)
