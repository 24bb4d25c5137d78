"""Edge losses, registered by name. ``target`` says what a loss compares: the ``labels``, two
models' ``logits``, two taps' ``features``, either (``outputs``, alike at both ends), or
``views``: a node's projections of two augmented views, ``[B, 2, D]`` (self-supervised graphs). Each
argument's default is the one its paper (or the benchmark code of RepDistiller / mdistiller,
where the paper gives none) uses; docs/losses.md has every formula."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ...registry import LOSSES
from .base import EdgeLoss
from .features import Attention, Hint, Relational, Similarity
from .logits import KL, MSE, CrossEntropy, DecoupledKD, Dist
from .views import NTXent, SimilarityKL, ViewMSE

__all__ = [
    "KL",
    "MSE",
    "Attention",
    "CrossEntropy",
    "DecoupledKD",
    "Dist",
    "EdgeLoss",
    "Hint",
    "NTXent",
    "Relational",
    "Similarity",
    "SimilarityKL",
    "ViewMSE",
]

Temperature = Annotated[float, Field(gt=0.0, le=1000.0)]
Weight = Annotated[float, Field(ge=0.0, le=1e6)]
# the smallest T whose T^2 is a normal float32: below it the losses' "times T^2" is 0 (or a
# subnormal), and below ~1e-38 z / T overflows to NaN: training stopped with a NaN loss
SMALLEST_TEMPERATURE = 1.1e-19


def _temperature_fits(values: dict[str, object]) -> None:
    """The ``check=`` hook of the logits losses (a validation error before anything runs)."""
    t = values.get("temperature")
    if isinstance(t, float) and t < SMALLEST_TEMPERATURE:
        raise ValueError(
            f"temperature {t:g} is too small: T^2 = {t * t:.1e} vanishes in float32, so the "
            f"loss would be 0 or NaN (use at least {SMALLEST_TEMPERATURE:g})"
        )


@LOSSES.register(target="labels")
def ce(label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0) -> EdgeLoss:
    """Cross-entropy with the ground-truth labels (the labels edge)."""
    return CrossEntropy("ce", label_smoothing=label_smoothing)


@LOSSES.register(target="logits", check=_temperature_fits)
def kl(temperature: Temperature = 1.0) -> EdgeLoss:
    """KL(p_sender || p_receiver), p = softmax(z / T), sender detached, times T^2."""
    return KL("kl", temperature=temperature)


@LOSSES.register(target="logits")
def mse() -> EdgeLoss:
    """Mean squared difference of the logits (sender detached)."""
    return MSE("mse")


@LOSSES.register(target="logits", check=_temperature_fits)
def dkd(alpha: Weight = 1.0, beta: Weight = 8.0, temperature: Temperature = 4.0) -> EdgeLoss:
    """Decoupled KD (Zhao et al. 2022): alpha x target-class KD + beta x non-target-class KD,
    at temperature T (CIFAR-100 defaults; warm it up with a rising gate)."""
    return DecoupledKD("dkd", alpha=alpha, beta=beta, temperature=temperature)


@LOSSES.register(target="logits", check=_temperature_fits)
def dist(beta: Weight = 1.0, gamma: Weight = 1.0, temperature: Temperature = 1.0) -> EdgeLoss:
    """DIST (Huang et al. 2022): inter-class (beta) and intra-class (gamma) Pearson
    relations of the two models' class probabilities."""
    return Dist("dist", beta=beta, gamma=gamma, temperature=temperature)


@LOSSES.register(target="features")
def hint(weight: Weight = 100.0) -> EdgeLoss:
    """FitNet hints (Romero et al. 2015): a learnable 1x1 conv + BN regressor from the
    receiver's tap to the sender's, then the mean squared difference."""
    return Hint("hint", weight=weight)


@LOSSES.register(target="features")
def attention(
    p: Annotated[float, Field(gt=0.0, le=8.0)] = 2.0, weight: Weight = 1000.0
) -> EdgeLoss:
    """Attention transfer (Zagoruyko & Komodakis 2017): the distance between the two taps'
    normalised spatial attention maps (channel mean of |F|^p)."""
    return Attention("attention", p=p, weight=weight)


@LOSSES.register(target="outputs")
def similarity(weight: Weight = 3000.0) -> EdgeLoss:
    """Similarity-preserving KD (Tung & Mori 2019): the distance between the two outputs'
    normalised batch similarity matrices (taps or logits)."""
    return Similarity("similarity", weight=weight)


@LOSSES.register(target="outputs")
def rkd(distance: Weight = 25.0, angle: Weight = 50.0, weight: Weight = 1.0) -> EdgeLoss:
    """Relational KD (Park et al. 2019): Huber distances between the two outputs' normalised
    pairwise distances and between their triplet angles (taps or logits, as vectors)."""
    return Relational("rkd", distance=distance, angle=angle, weight=weight)


@LOSSES.register(target="views", views_of="self", check=_temperature_fits)
def nt_xent(temperature: Temperature = 0.3) -> EdgeLoss:
    """SimCLR's NT-Xent (Chen et al. 2020) on a node's own two views (its self edge): each
    projection's positive is its other view, the other 2B - 2 its negatives, at T (the
    original's 0.3)."""
    return NTXent("nt_xent", temperature=temperature)


@LOSSES.register(target="views", views_of="peers", check=_temperature_fits)
def similarity_kl(temperature: Temperature = 0.3) -> EdgeLoss:
    """DoGo (Bhat et al. 2021): KL between the two nodes' softmaxed B x B view-1/view-2
    cosine-similarity matrices, row by row, at T (the original's 0.3), times T^2."""
    return SimilarityKL("similarity_kl", temperature=temperature)


@LOSSES.register(target="views", views_of="peers")
def view_mse() -> EdgeLoss:
    """DisCo-style (Gao et al. 2022): the mean squared difference of the two nodes'
    projections of both views (sender detached), as the original's two-view feature MSE."""
    return ViewMSE("view_mse")
