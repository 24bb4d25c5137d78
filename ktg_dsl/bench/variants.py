"""The variants ``ktg bench`` compares: the original KTG loop, the engine, the ideal (each
model's isolated step, summed) and a full epoch with the real loader."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from ..compiler import Program, make_optimizer
from ..run.recipe import default_engine
from ..spec.schema import Spec
from .measure import Step, Variant, _sync_for


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
    engine = default_engine(program)
    epoch = program.epochs // 2

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        engine.train_step(x, y, epoch)

    return step


# --------------------------------------------------------------------------- memory


def epoch_variant(program: Program, spec: Spec, steps: int) -> Variant:
    """The engine at auto fed by the real loader (augmentation and normalisation included)."""
    from ..run.data import load_bundle, make_batches

    loader = make_batches(spec, load_bundle(spec), program).train  # two views: self-supervised
    engine = default_engine(program)
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
