"""What this host can do, and what a spec's ``auto`` values become on it: the device, the
precision, the memory format, whether to compile, whether the data fits on the GPU, which GPUs
are visible. With ``run/threads.py`` (the CPU: its cores, their load, the thread policy), the
only modules that probe the hardware; the compiler takes their answers as a :class:`Target`."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

from ..engine.program import Precision, Target
from ..errors import ArgumentError, KtgRuntimeError
from ..spec.schema import Spec, TrainConfig

COMPILE_MIN_STEPS = 20_000  # below this, compiling costs more than it saves (CPU benchmark)


def resolve_device(text: str) -> torch.device:
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise KtgRuntimeError(f"train.device is {text!r}, which is not a device name") from None
    if dev.index is not None and dev.index < 0:  # an index past PyTorch's 8 bits wraps around
        raise KtgRuntimeError(f"train.device is {text!r}, which is not a device name")
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
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                n = torch.get_num_threads()
                return f"{line.split(':', 1)[1].strip()} ({n} thread{'s' if n != 1 else ''})"
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


def resolve_compile(switch: str, device: torch.device, total_steps: int | None) -> bool:
    if switch != "auto":
        return switch == "on"
    # Measured on the CPU benchmark: about 2 minutes to compile, then 1.3x faster steps; it
    # pays off in long runs only. Not yet measured on a GPU, so auto leaves CUDA alone.
    return device.type == "cpu" and total_steps is not None and total_steps >= COMPILE_MIN_STEPS


def resolve_target(
    train: TrainConfig,
    *,
    device: str | torch.device | None = None,
    precision: str | None = None,
    steps_per_epoch: int | None = None,
    node_devices: dict[str, str] | None = None,
    remote: frozenset[str] = frozenset(),
) -> Target:
    """The spec's ``train`` switches resolved on this host (``device`` and ``precision``
    override the spec's); ``node_devices``: nodes placed on their own device in one process;
    ``remote``: nodes another rank trains."""
    dev = device if isinstance(device, torch.device) else resolve_device(device or train.device)
    total = steps_per_epoch * train.epochs if steps_per_epoch else None
    placed = {name: _node_device(name, text) for name, text in (node_devices or {}).items()}
    return Target(
        dev,
        resolve_precision(precision or train.precision, dev),
        resolve_channels_last(train.channels_last, dev),
        resolve_compile(train.compile, dev, total),
        placed,
        remote,
    )


def check_devices(spec: Spec) -> None:
    """``train.device`` and every ``nodes.<name>.device`` exist here (before anything is
    created): KtgRuntimeError / ArgumentError otherwise."""
    resolve_device(spec.train.device)
    for name, node in spec.nodes.items():
        if node.device:
            _node_device(name, node.device)


def _node_device(name: str, text: str) -> torch.device:
    try:
        return resolve_device(text)
    except KtgRuntimeError as exc:
        raise ArgumentError(f"nodes.{name}.device: {exc}".replace("train.device is ", "")) from None


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether ``nbytes`` of data fit comfortably on a GPU (a quarter of its free memory,
    leaving the rest to the models)."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < 0.25 * free


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        return [d.strip() for d in named.split(",") if d.strip()]
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def set_determinism(on: bool) -> None:
    """Deterministic kernels (``train.deterministic``): slower, needed for bit-exact resume
    on a GPU."""
    if on:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def seed_generators(seed: int) -> None:
    """Dropout and other in-model randomness draw from the global generators: seed them from
    the spec (a resumed run then restores their state from last.pt)."""
    import random

    torch.manual_seed(seed)
    random.seed(seed)
