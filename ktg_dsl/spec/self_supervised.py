"""The ``self_supervised`` section: its presence makes the graph self-supervised (SimCLR deep
collaborative learning, docs/self-supervised.md). Every node then trains an encoder (its
model with the classifier replaced by identity) and a projector on two augmented views of each
batch; the self edge (``from: labels``) carries a views loss (``nt_xent``) instead of the
labels, node -> node edges a views loss (``similarity_kl``, ``view_mse``) or a feature loss,
and each evaluation scores the encoder's features by kNN (``knn_top1``). Torch-free."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from ..registry import NOT_BOOL, NOT_BOOL_FLOAT
from .messages import _show, shorten
from .types import Bool, ModulePath, StrictModel, hinted

Prob = Annotated[float, Field(ge=0.0, le=1.0), NOT_BOOL_FLOAT]
NonNeg = Annotated[float, Field(ge=0.0), NOT_BOOL_FLOAT]


def _ordered(pair: list[float]) -> list[float]:
    if pair[0] > pair[1]:
        raise ValueError(f"a range from low to high, got [{pair[0]}, {pair[1]}]")
    return pair


def _pair(value: Any) -> Any:
    """A range is two numbers, said so in the user's words (not pydantic's list lengths)."""
    if isinstance(value, list) and len(value) != 2:
        raise hinted(
            f"expected a range [low, high] of two numbers, got {len(value)}",
            "write two numbers, the low one first",
        )
    return value


# an area fraction: a crop of area 0 is no image (kornia falls back to a centre crop unsaid)
Area = Annotated[float, Field(gt=0.0, le=1.0), NOT_BOOL_FLOAT]
Range = Annotated[
    list[Area], Field(min_length=2, max_length=2), BeforeValidator(_pair), AfterValidator(_ordered)
]
Ratio = Annotated[
    list[Annotated[float, Field(gt=0.0), NOT_BOOL_FLOAT]],
    Field(min_length=2, max_length=2),
    BeforeValidator(_pair),
    AfterValidator(_ordered),
]


# a projector layer's width, bounded as the models' widths are: twice the widest published
# projector (Barlow Twins' 8192); 65536 x 65536 was 17 GB of weights, the process killed
Width = Annotated[int, Field(ge=1, le=16384), NOT_BOOL]

STEPS = ("random_resized_crop", "horizontal_flip", "color_jitter", "grayscale")  # StepName's


def _named(value: Any) -> Any:
    """A step written by its name alone (``horizontal_flip``) is that step with its defaults;
    an unknown name is said in the user's words, with the closest known one."""
    step = {"type": value} if isinstance(value, str) else value
    if step is None:
        return step  # pydantic says so, with what YAML reads as nothing
    if not isinstance(step, dict):
        raise hinted(
            f"expected an augmentation step (its name, or a mapping with its type and "
            f"options), got {_show(step)}",
            f"e.g. horizontal_flip or {{type: grayscale, p: 0.2}}; steps: {', '.join(STEPS)}",
        )
    kind = step.get("type")
    if "type" not in step:
        raise hinted(
            "an augmentation step needs its type",
            f"add type: one of {', '.join(STEPS)}, or write the step's name alone",
        )
    if not isinstance(kind, str):
        raise hinted(
            f"expected the name of an augmentation step as its type, got {_show(kind)}",
            f"one of: {', '.join(STEPS)}",
        )
    if kind not in STEPS:
        close = difflib.get_close_matches(kind, STEPS, n=1)
        raise hinted(
            f"unknown augmentation step '{shorten(kind)}'",
            f"did you mean '{close[0]}'?" if close else f"one of: {', '.join(STEPS)}",
        )
    return step


def _not_empty(value: Any) -> Any:
    """No step at all: both views would be the same image, and NT-Xent's positive pair the
    same projection twice, a task solved without learning anything."""
    if isinstance(value, list) and not value:
        raise hinted(
            "an empty augment list makes both views the same image: there is nothing to "
            "learn from telling them apart from the other samples",
            "list at least one step, e.g. [random_resized_crop, horizontal_flip], or leave "
            "augment out for SimCLR's pipeline",
        )
    return value


class RandomResizedCrop(StrictModel):
    """A random part of the image (area ``scale``, aspect ``ratio``) resized to the image."""

    type: Literal["random_resized_crop"]
    scale: Range = Field([0.08, 1.0], description="area range [low, high], as a fraction")
    ratio: Ratio = Field([3 / 4, 4 / 3], description="aspect-ratio range [low, high]")


class HorizontalFlip(StrictModel):
    """The image mirrored left to right, with probability ``p``."""

    type: Literal["horizontal_flip"]
    p: Prob = Field(0.5, description="probability of a flip")


class ColorJitter(StrictModel):
    """Brightness, contrast, saturation and hue jittered, applied with probability ``p``."""

    type: Literal["color_jitter"]
    brightness: NonNeg = 0.4
    contrast: NonNeg = 0.4
    saturation: NonNeg = 0.4
    hue: Annotated[float, Field(ge=0.0, le=0.5), NOT_BOOL_FLOAT] = 0.1
    p: Prob = Field(0.8, description="probability of the jitter")


class Grayscale(StrictModel):
    """The image made grey (its channels' luminance), with probability ``p``."""

    type: Literal["grayscale"]
    p: Prob = Field(0.2, description="probability of turning the image grey")


Step = Annotated[
    RandomResizedCrop | HorizontalFlip | ColorJitter | Grayscale, Field(discriminator="type")
]
StepName = Literal["random_resized_crop", "horizontal_flip", "color_jitter", "grayscale"]
# the JSON Schema (editors) takes a step's name alone too, as the spec does
AugmentStep = Annotated[Step, BeforeValidator(_named, json_schema_input_type=StepName | Step)]


def _simclr_pipeline() -> list[Any]:
    return [
        RandomResizedCrop(type="random_resized_crop"),
        HorizontalFlip(type="horizontal_flip"),
        ColorJitter(type="color_jitter"),
        Grayscale(type="grayscale"),
    ]


class Head(StrictModel):
    """The projector put on each node's encoder: Linear(d, hidden) -> ReLU -> Linear(hidden,
    dim, no bias), d the width of the features the classifier took."""

    classifier: Literal["auto"] | ModulePath = Field(
        "auto",
        description="the model's classifier, replaced by identity (the encoder's output is "
        "what it took); auto: the model's last Linear layer",
    )
    hidden: Literal["auto"] | Width = Field("auto", description="auto: d, as SimCLR")
    dim: Width = Field(128, description="the projection's size")


class Knn(StrictModel):
    """kNN on the encoder's features, the training part (unaugmented) as the memory bank, the
    evaluated part as queries: unweighted, the k nearest by Euclidean distance vote once each
    (the original's scikit-learn KNeighborsClassifier); weighted, the k most similar by cosine
    (L2-normalised features) vote exp(similarity / temperature)."""

    k: Annotated[int, Field(ge=1, le=100_000), NOT_BOOL] = Field(
        20, description="neighbours that vote"
    )
    weighted: Bool = Field(
        False,
        description="false: a plain majority vote (the original); true: votes weighted by "
        "exp(similarity / temperature)",
    )
    temperature: Annotated[float, Field(gt=0.0), NOT_BOOL_FLOAT] = Field(
        0.07, description="the weighted vote's temperature"
    )


class SelfSupervised(StrictModel):
    """A label-free graph: two views per batch, a projector per node, kNN evaluation."""

    augment: Annotated[list[AugmentStep], Field(min_length=1), BeforeValidator(_not_empty)] = Field(
        default_factory=_simclr_pipeline,
        description="each view's augmentation, in order, on the device and per sample: "
        "random_resized_crop, horizontal_flip, color_jitter, grayscale (by name, or a "
        "mapping with type and options); default: SimCLR's CIFAR pipeline",
    )
    head: Head = Field(default_factory=Head, description="see `self_supervised.head` below")
    knn: Knn = Field(default_factory=Knn, description="see `self_supervised.knn` below")
    linear_probe: Bool = Field(
        False,
        description="also fit a linear classifier on the frozen features at each evaluation "
        "(probe_top1 in metrics.jsonl; slower)",
    )


def written_empty(value: Any) -> Any:
    """``self_supervised:`` with nothing after it (every option commented out) is null to YAML:
    read as absent, the graph would silently train on the labels. Say so instead."""
    if value is None:
        raise hinted(
            "the self_supervised section is empty: YAML reads it as nothing, which would make "
            "this a supervised graph",
            "write 'self_supervised: {}' for SimCLR's defaults, or remove the key for a "
            "supervised graph",
        )
    return value


def with_defaults(data: Any) -> Any:
    """A self-supervised spec's edges default to ``nt_xent`` (the self edge) and
    ``similarity_kl`` (node -> node) where the spec names no loss of its own."""
    if not isinstance(data, dict) or not isinstance(data.get("self_supervised"), dict):
        return data
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        return data
    filled = {"labels_loss": "nt_xent", "loss": "similarity_kl", **defaults}
    return {**data, "defaults": filled}
