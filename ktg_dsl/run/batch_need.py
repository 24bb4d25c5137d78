"""The smallest batch a compiled program can train on, checked before training against the
smallest batch the data will give it (a last batch with ``drop_last: false``, a replica's share
of a batch under ``data_parallel``). What needs more than one sample: a loss that compares the
samples of a batch with each other (``EdgeLoss.min_batch``: rkd's distances need a pair), and
a BatchNorm in training that sees one value per channel for each sample (after a vector tap, or
a spatial size that shrank to 1x1): PyTorch stops on it mid-epoch with "Expected more than 1
value per channel when training", and a relational loss returns NaN. Said here instead, with
what to change (exit 1; nothing is written).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..engine.program import Program
from ..errors import KtgRuntimeError


def smallest_share(size: int, batch: int, drop_last: bool, replicas: int) -> tuple[int, str]:
    """The fewest samples a training step gives one replica, and where that happens."""
    last = size % batch  # with drop_last: false, the last batch (the only one if size < batch)
    if not drop_last and last:
        where = f"the last training batch holds {last} sample(s) ({size:,} in batches of {batch})"
        smallest = last
    else:
        where, smallest = f"a training batch holds {batch} sample(s)", batch
    share = smallest // replicas  # tensor_split: the later shards get the floor
    if replicas > 1:
        where += f" (a replica of train.distributed.data_parallel {replicas} gets {share})"
    return share, where


def check_batches(program: Program, size: int, batch: int, drop_last: bool, replicas: int) -> None:
    """Refuse (KtgRuntimeError) a run whose smallest training step is smaller than what one
    of its losses or normalisation layers needs."""
    share, where = smallest_share(size, batch, drop_last, replicas)
    if not drop_last and size % batch:
        fix = "Set data.drop_last: true, or a batch_size that leaves a larger last batch"
    else:
        fix = "Raise data.batch_size"
    fix += " (or lower train.distributed.data_parallel)" if replicas > 1 else ""
    if share < 1:
        raise KtgRuntimeError(
            f"{where}: fewer than the {replicas} replicas of train.distributed.data_parallel, "
            f"so one replica would train on nothing. {fix}"
        )
    for need, why in batch_needs(program):
        if share < need:
            raise KtgRuntimeError(f"{where}, but {why}, so it needs at least {need} a step. {fix}")


def batch_needs(program: Program) -> list[tuple[int, str]]:
    """Every need of more than one sample per step, with its reason in words."""
    by_index = {node.index: node for node in program.nodes.values()}
    needs: list[tuple[int, str]] = []
    for slot in program.edges:
        receiver, sender = by_index[slot.receiver], by_index[slot.sender]
        if receiver.frozen:
            continue
        edge = f"edge {sender.name} -> {receiver.name}"
        need = slot.loss.min_batch
        if need > 1:
            needs.append((need, f"the {slot.loss.name} loss of {edge} compares samples"))
        if slot.adapter is not None:
            shape = receiver.tap_shapes.get(slot.receiver_tap or "", (program.num_classes,))
            norm = single_value_norm(slot.adapter, shape)
            if norm:
                needs.append((2, f"the {slot.loss.name} adapter of {edge} has {norm}"))
    for node in program.nodes.values():
        if not node.frozen:
            norm = single_value_norm(node.model, program.input_shape)
            if norm:
                kind = getattr(getattr(node.config, "model", None), "type", "model")
                needs.append((2, f"node '{node.name}' ('{kind}') has {norm}"))
    return needs


def single_value_norm(module: nn.Module, shape: tuple[int, ...]) -> str | None:
    """The first BatchNorm of ``module`` that sees one value per channel for each sample of an
    input of ``shape`` (without the batch), in words; None if there is none. One forward of two
    samples in eval mode (nothing learns, no random draw), on the module's own device (the meta
    device for a node of another rank)."""
    kind = nn.modules.batchnorm._BatchNorm
    norms: dict[nn.Module, str] = {
        m: name for name, m in module.named_modules() if isinstance(m, kind)
    }
    if not norms:
        return None
    seen: list[tuple[str, tuple[int, ...]]] = []

    def hook(m: nn.Module, inputs: Any) -> None:
        seen.append((norms[m], tuple(inputs[0].shape)))

    handles = [m.register_forward_pre_hook(hook) for m in norms]
    was = module.training
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    try:
        module.eval()
        with torch.no_grad():  # forward, not __call__: a compiled model is not compiled here
            module.forward(torch.zeros(2, *shape, device=device))
    except Exception:  # a model this probe cannot run says so itself when it trains
        return None
    finally:
        module.train(was)
        for handle in handles:
            handle.remove()
    for name, got in seen:
        if math.prod(got[2:]) == 1:
            return f"a BatchNorm ({name}) that sees one value per channel per sample"
    return None
