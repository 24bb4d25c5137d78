"""A trained node used on its own: ``ktg_dsl.load_node("runs/x/latest/best/student.pt")`` gives
its model (eval mode, on the CPU) with the preprocessing it was trained with and its class
names, read from the self-describing node file ``ktg train`` writes (``best/<node>.pt``):

    node = ktg_dsl.load_node("runs/digits/latest/best/student.pt")
    logits = node.predict(images)          # uint8 [N, C, H, W] (0..255) or float, as the data
    names = [node.classes[i] for i in logits.argmax(1).tolist()]

The file is read with ``weights_only=True`` (no code runs); its model is built from the
registry, so a plugin's model needs its plugin imported first (``ktg_dsl.registry.load_plugins``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import KtgRuntimeError
from ..registry import UnknownComponentError, load_builtins
from ..spec.components import build
from ..spec.types import ModelRef
from . import checkpoint as ckpt


@dataclass
class TrainedNode:
    """A node's model (eval mode) and what it needs of its inputs."""

    name: str
    model: nn.Module
    classes: list[str]
    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...] | None  # None: a file of an older ktg (no normalisation recorded)
    std: tuple[float, ...] | None
    scale: float
    epoch: int  # from 1, as tables and plots count
    val_top1: float | None
    source: dict[str, Any]  # the file's other facts (model, node spec, ktg version)

    def preprocess(self, images: Tensor) -> Tensor:
        """``images`` ([N, C, H, W] or one [C, H, W]) as the model saw them in training:
        divided by ``scale`` (255 for uint8 pixels) and normalised per channel. Float images
        are taken as on the dataset's own scale (``[0, 1]`` for 8-bit datasets and the digits);
        uint8 images for a node trained on float images (``scale`` 1) are refused."""
        if self.mean is None or self.std is None:
            raise KtgRuntimeError(
                f"node file of '{self.name}' records no input normalisation (written by an "
                "older ktg); normalise the images yourself and call .model"
            )
        x = images.unsqueeze(0) if images.dim() == 3 else images
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            shape = ", ".join(map(str, self.input_shape))
            raise KtgRuntimeError(
                f"node '{self.name}' takes images of shape [N, {shape}], got {list(images.shape)}"
            )
        if x.dtype == torch.uint8 and self.scale == 1.0:
            raise KtgRuntimeError(
                f"node '{self.name}' was trained on float images (its dataset stores floats: "
                "the bundled digits are in [0, 1]); 8-bit pixels have no scale to divide "
                "by here: give float images on the dataset's own scale"
            )
        x = x.float() / self.scale if x.dtype == torch.uint8 else x.float()
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """The logits ``[N, classes]`` of raw images (preprocessed here)."""
        out: Tensor = self.model(self.preprocess(images))
        return out


def load_node(path: str | Path) -> TrainedNode:
    """The node in a ktg node file (``best/<node>.pt``), ready to use (see the module)."""
    file = Path(path).expanduser()
    obj = ckpt.load(file, "node file")
    if obj.get("format") != ckpt.NODE_FORMAT:
        raise KtgRuntimeError(
            f"{file} is not a ktg node file (best/<node>.pt of a run); a run's last.pt or a "
            "plain state_dict holds no model description"
        )
    if obj.get("self_supervised"):
        raise KtgRuntimeError(
            f"{file} is a self-supervised node (an encoder and a projector, no classifier): "
            "ktg export and load_node take classifiers (ktg eval scores it by kNN); its "
            "weights are "
            "torch.load(file, weights_only=True)['state_dict'] (encoder.* and projector.*)"
        )
    load_builtins()
    model_ref = _model_ref(obj, file)
    classes = obj.get("num_classes")
    if not isinstance(classes, int) or not isinstance(obj.get("state_dict"), dict):
        raise KtgRuntimeError(f"{file} is damaged: it has no class count or no weights")
    data = obj.get("data") or {}
    shape = tuple(int(v) for v in data.get("input_shape") or (obj.get("in_channels", 3), 0, 0))
    try:
        model: nn.Module = build(model_ref, num_classes=classes, in_channels=shape[0])
    except UnknownComponentError as exc:
        raise KtgRuntimeError(
            f"{file}: {exc}; a plugin's model needs its plugin imported first "
            "(ktg_dsl.registry.load_plugins(['module']))"
        ) from None
    problems = ckpt.fit_problems(model.state_dict(), obj["state_dict"])
    if problems:
        raise KtgRuntimeError(f"{file} does not fit its own model: " + "; ".join(problems))
    model.load_state_dict(obj["state_dict"])
    model.eval()
    names = data.get("classes") or [str(i) for i in range(classes)]
    return TrainedNode(
        name=str(obj.get("node", file.stem)),
        model=model,
        classes=list(names),
        input_shape=(shape[0], shape[1], shape[2]),
        mean=tuple(data["mean"]) if "mean" in data else None,
        std=tuple(data["std"]) if "std" in data else None,
        scale=float(data.get("scale", 255.0)),
        epoch=int(obj.get("epoch", 0)) + 1,
        val_top1=obj.get("val_top1"),
        source={k: obj[k] for k in ("model", "spec", "ktg_version") if k in obj},
    )


def _model_ref(obj: dict[str, Any], file: Path) -> ModelRef:
    model = obj.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("type"), str):
        raise KtgRuntimeError(f"{file} names no model (its 'model' entry is missing or damaged)")
    return ModelRef.model_validate({"type": model["type"], **dict(model.get("args") or {})})
