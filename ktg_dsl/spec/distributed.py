"""The ``train.distributed`` section: how a run spreads over processes. Torch-free."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from ..registry import NOT_BOOL, NOT_BOOL_FLOAT
from .types import NodeName, StrictModel, auto_or_count


class DistributedConfig(StrictModel):
    """How a run spreads over processes started by torchrun or ``ktg train --nproc N``: the
    ranks form G graph groups x D replicas (docs/distributed.md). Ignored in one process."""

    graph_groups: Annotated[
        Literal["auto"] | Annotated[int, Field(ge=1, le=4096)], BeforeValidator(auto_or_count)
    ] = Field(
        "auto", description="G, the groups the nodes are placed on; auto: ranks / data_parallel"
    )
    data_parallel: Annotated[int, Field(ge=1, le=4096), NOT_BOOL] = Field(
        1, description="D, the replicas of every node (DistributedDataParallel)"
    )
    backend: Literal["auto", "nccl", "gloo"] = Field(
        "auto", description="auto: nccl on CUDA, gloo on CPU"
    )
    timeout: Annotated[float, Field(ge=1.0, le=86400.0), NOT_BOOL_FLOAT] = Field(
        600.0, description="seconds a collective may wait before the run stops with an error"
    )
    placement: dict[NodeName, Annotated[int, Field(ge=0), NOT_BOOL]] | None = Field(
        None,
        description="node -> graph group; default: balanced by each model's forward FLOPs "
        "(the same for a given world size)",
    )
