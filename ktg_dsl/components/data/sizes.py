"""What ``ktg validate`` knows of a dataset's training part before loading it: the
registrations' ``train_size`` hooks. Torch-free."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def per_class_train_size(
    table: dict[str, tuple[int, int]], classes: int = 10
) -> Callable[[dict[str, Any], str], int | None]:
    """A registration's ``train_size`` hook for a dataset whose training part, per split, has
    ``table[split] = (size, images of its smallest class)``: the size with
    ``train_per_class``, and an error before loading anything when it asks for too many."""

    def train_size(args: dict[str, Any], split: str) -> int | None:
        count = args.get("train_per_class")
        if split not in table:
            return None
        size, smallest = table[split]
        if isinstance(count, int) and count > smallest:
            raise ValueError(  # (the argument, what is wrong, a hint): validate's format
                "train_per_class",
                f"train_per_class is {count}, but with split: {split} the training part "
                f"holds only {smallest} images of its smallest class",
                f"use at most {smallest}",
            )
        return classes * count if isinstance(count, int) else size

    return train_size
