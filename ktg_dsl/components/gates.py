"""Gates: the weight of an edge over training time.

A gate maps a time index ``t`` in ``0..T-1`` to a weight (``T`` = epochs, or total steps when
``train.gate_unit: step``). The linear family is written with the original KTG convention,
progress ``p = t / (T - 1)``; for ``T <= 1``, ``p`` is 1 after the first time index and 0 at it.
Gates are plain Python: they are evaluated on the host once per epoch (or step). A per-sample
gate (``per_sample = True``, like ``correct``) also gives a mask over the batch through
``sample_mask(sender_logits, labels)``, which the engine multiplies into the edge's per-sample
loss every step: a new per-sample gate needs no change to the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from .. import contracts
from ..registry import GATES

if TYPE_CHECKING:
    from torch import Tensor

Style = Literal["through", "cutoff", "rising", "falling", "correct", "parametric"]
Weight = Annotated[float, Field(ge=0.0, le=100.0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def progress(t: int, T: int) -> float:
    """Fraction of training done at time index t of T (0 at the start, 1 at the last index)."""
    if T <= 1:
        return 1.0 if t > 0 else 0.0
    return min(max(t / (T - 1), 0.0), 1.0)


@dataclass(frozen=True)
class Gate(contracts.Gate):
    """A built-in gate: ``shape`` describes w(p) for p in [0, 1]; subclasses override it."""

    name: str
    style: Style
    per_sample: bool = False

    def shape(self, p: float) -> float:
        raise NotImplementedError

    def weight(self, t: int, T: int) -> float:
        return float(self.shape(progress(t, T)))

    @property
    def never_open(self) -> bool:
        """True for gates that are closed at every time, whatever T: the edge is not built."""
        return self.style == "cutoff"

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class Constant(Gate):
    value: float = 1.0

    def shape(self, p: float) -> float:
        return self.value


@dataclass(frozen=True)
class CorrectPrediction(Constant):
    """1 for the samples the sender predicts right, 0 for the others (the KTG paper's)."""

    def sample_mask(self, sender_logits: Tensor, labels: Tensor) -> Tensor | None:
        return (sender_logits.argmax(-1) == labels).float()


@dataclass(frozen=True)
class Linear(Gate):
    start: float = 0.0
    end: float = 1.0

    def shape(self, p: float) -> float:
        return self.start + (self.end - self.start) * p

    def describe(self) -> str:
        if self.name in ("positive_linear", "negative_linear"):
            return self.name
        return f"linear {self.start:g}->{self.end:g}"


@dataclass(frozen=True)
class Power(Gate):
    """The original repository's gamma gates: p ** (1 / gamma), rising or falling."""

    gamma: float = 1.0
    rising: bool = True

    def shape(self, p: float) -> float:
        base = p if self.rising else 1.0 - p
        return base ** (1.0 / self.gamma)

    def describe(self) -> str:
        return f"{self.name} γ={self.gamma:g}"


@dataclass(frozen=True)
class Cosine(Gate):
    start: float = 0.0
    end: float = 1.0

    def shape(self, p: float) -> float:
        return self.start + (self.end - self.start) * (1.0 - math.cos(math.pi * p)) / 2.0

    def describe(self) -> str:
        return f"cosine {self.start:g}->{self.end:g}"


@dataclass(frozen=True)
class Step(Gate):
    at: float = 0.5
    before: float = 0.0
    after: float = 1.0

    def shape(self, p: float) -> float:
        return self.after if p >= self.at else self.before

    def describe(self) -> str:
        return f"step {self.before:g}->{self.after:g} at {self.at:g}"


def _direction(start: float, end: float) -> Style:
    return "rising" if end > start else "falling" if end < start else "parametric"


@GATES.register()
def through() -> Gate:
    """Always open: weight 1."""
    return Constant("through", "through", value=1.0)


@GATES.register()
def cutoff() -> Gate:
    """Always closed: the edge is not computed at all (same as not writing it)."""
    return Constant("cutoff", "cutoff", value=0.0)


@GATES.register()
def positive_linear() -> Gate:
    """Rises linearly from 0 at the first epoch to 1 at the last: e / (E - 1)."""
    return Linear("positive_linear", "rising", start=0.0, end=1.0)


@GATES.register()
def negative_linear() -> Gate:
    """Falls linearly from 1 at the first epoch to 0 at the last: (E - 1 - e) / (E - 1)."""
    return Linear("negative_linear", "falling", start=1.0, end=0.0)


@GATES.register()
def correct() -> Gate:
    """Per sample: 1 where the sender predicts the label right, else 0 (the KTG paper's gate).

    On the labels edge the sender is the node itself: it learns from the samples it already
    gets right."""
    return CorrectPrediction("correct", "correct", per_sample=True, value=1.0)


@GATES.register()
def linear(start: Weight = 0.0, end: Weight = 1.0) -> Gate:
    """From ``start`` at the first epoch to ``end`` at the last, linearly."""
    return Linear("linear", _direction(start, end), start=start, end=end)


@GATES.register()
def cosine(start: Weight = 0.0, end: Weight = 1.0) -> Gate:
    """From ``start`` to ``end`` along half a cosine (flat at both ends)."""
    return Cosine("cosine", _direction(start, end), start=start, end=end)


@GATES.register()
def step(at: Fraction = 0.5, before: Weight = 0.0, after: Weight = 1.0) -> Gate:
    """``before`` until the fraction ``at`` of training is done, ``after`` from then on."""
    return Step("step", _direction(before, after), at=at, before=before, after=after)


@GATES.register()
def positive_gamma(gamma: Annotated[float, Field(gt=0.0)] = 1.0) -> Gate:
    """Rises as p ** (1 / gamma): the original repository's PositiveGammaGate."""
    return Power("positive_gamma", "rising", gamma=gamma, rising=True)


@GATES.register()
def negative_gamma(gamma: Annotated[float, Field(gt=0.0)] = 1.0) -> Gate:
    """Falls as (1 - p) ** (1 / gamma): the original repository's NegativeGammaGate."""
    return Power("negative_gamma", "falling", gamma=gamma, rising=False)
