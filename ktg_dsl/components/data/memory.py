"""How much memory a dataset held in memory needs, checked before anything is allocated.
Torch-free: ``ktg validate`` checks a synthetic dataset's size with it."""

from __future__ import annotations

from typing import Any

MAX_BYTES = 8 * 2**30  # the most decoded data ktg holds in memory (as imagefolder)


def size_text(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def synthetic_bytes(args: dict[str, Any]) -> int:
    """The float32 images of a synthetic dataset (train, evaluation and the prototypes)."""
    pixels = int(args["channels"]) * int(args["image_size"]) ** 2
    samples = int(args["train_size"]) + int(args["val_size"]) + int(args["num_classes"])
    return samples * pixels * 4


def synthetic_too_big(args: dict[str, Any], limit: int = MAX_BYTES) -> str | None:
    """Why a synthetic dataset cannot be held in memory, or None when it can."""
    needed = synthetic_bytes(args)
    if needed <= limit:
        return None
    size = args["image_size"]
    return (
        f"the synthetic images ({int(args['train_size']) + int(args['val_size']):,} samples of "
        f"{args['channels']}x{size}x{size} float32) need {size_text(needed)} in memory, more "
        f"than the {size_text(limit)} ktg holds; lower train_size, val_size, image_size or "
        "channels"
    )


def check_synthetic(args: dict[str, Any]) -> None:
    """The registration's ``check=`` hook: a validation error before anything is built."""
    problem = synthetic_too_big(args)
    if problem is not None:
        raise ValueError(problem)
