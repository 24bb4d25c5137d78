"""A model that records, when it is built, how many threads torch computes with in the process
that builds it: proof that a command applied ktg's thread policy before building its models."""

import os
from pathlib import Path
from typing import Any

from ktg_dsl.registry import MODELS


@MODELS.register()
def thread_probe(num_classes: int, in_channels: int, width: int = 4) -> Any:
    """small_cnn; appends ``<pid> <torch threads> <RANK or ->`` to the file named by
    $KTG_TEST_THREADS."""
    import torch

    from ktg_dsl.components.models.small_cnn import SmallCNN

    log = os.environ.get("KTG_TEST_THREADS")
    if log:
        with Path(log).open("a") as f:
            f.write(f"{os.getpid()} {torch.get_num_threads()} {os.environ.get('RANK', '-')}\n")
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, width=width)
