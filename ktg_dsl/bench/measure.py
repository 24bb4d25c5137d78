"""Timing variants side by side: each variant's steps timed in interleaved rounds (A B C ...
A B C ...) so that machine noise hits every variant alike; peak memory per variant."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

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
