"""One typed contract per kind of component: everything any stage of ktg reads of what a
registered builder returns. A plugin that meets its kind's contract works in every command
(validate, render, train, search, bench); the check stage builds gates and losses once and
refuses what does not meet it, at the spec key that names it.

* a **gate** (subclass :class:`Gate`, implement ``weight``): the edge's weight over time; the
  graph checks read ``can_open``/``never_open``, ``ktg render`` its ``style`` and
  ``describe()``, the engine ``weight``, ``per_sample`` and ``sample_mask``;
* an **edge loss** (subclass :class:`EdgeLoss`, implement ``per_sample``): a per-sample loss of a
  receiver's output against a target; the optional capabilities (a group kernel, labels, an
  adapter, a shape check) have defaults here, so that no stage has to ask whether they exist;
* a **model**: a ``torch.nn.Module`` whose forward takes a batch ``[B, C, H, W]`` and returns
  logits ``[B, num_classes]`` (checked when it is built);
* a **dataset**: a ``components.data.bundle.DataBundle``;
* an **optimizer**, a **scheduler**: :class:`Optimizer`, :class:`Scheduler` below (torch's
  meet them);
* a **sampler**, a **pruner**: Optuna's ``BaseSampler`` and ``BasePruner``.

What a registration itself tells ktg (a loss's target, a dataset's size without loading it)
is the registry's typed metadata (``registry.LossMeta`` and its siblings), not part of the
built object. Torch-free: the check stage imports this module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor, nn

Shape = tuple[int, ...]  # a tap's shape without the batch dimension
SCAN_POINTS = 4096  # time indices a gate's can_open looks at, evenly spread


def spread(n: int, k: int) -> list[int]:
    """At most ``k`` evenly spaced indices of ``range(n)``, the first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


class Gate(ABC):
    """An edge's weight at time index ``t`` of ``T`` (epochs, or steps with
    ``train.gate_unit: step``)."""

    per_sample: bool = False  # also weights each sample (sample_mask)
    style: str = "parametric"  # how ktg render draws the edge

    @abstractmethod
    def weight(self, t: int, T: int) -> float:
        """The edge's weight at time index ``t`` of ``T`` (host side, no tensors)."""

    def sample_mask(self, sender_logits: Tensor, labels: Tensor) -> Tensor | None:
        """Per-sample weights ``[B]`` (float) for a per-sample gate, else None. On a labels
        edge the sender is the receiving node itself."""
        return None

    def can_open(self, T: int) -> bool:
        """Whether the weight is ever above zero within ``T`` time indices (a node none of
        whose edges can open never trains)."""
        if self.per_sample:
            return True
        return any(self.weight(t, T) > 0.0 for t in spread(T, SCAN_POINTS))

    @property
    def never_open(self) -> bool:
        """Closed at every time, whatever ``T``: the edge is not computed at all."""
        return False

    def describe(self) -> str:
        """How ``ktg render`` names the gate ('': by its reference in the spec)."""
        return str(getattr(self, "name", ""))


class EdgeLoss(ABC):
    """A per-sample loss ``[B]`` of a receiver's output against a target (the labels, or a
    sender's detached output). What it compares (labels, logits, features, outputs) is told
    at registration (``LOSSES.register(target=...)``)."""

    name: str
    needs_labels: bool = False  # per_sample also gets labels=
    # the fewest samples per step the loss can be computed on (a loss comparing the samples of
    # a batch with each other needs more than one); checked before training (run/batch_need.py)
    min_batch: ClassVar[int] = 1

    @abstractmethod
    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss of each sample ``[B]``: ``logits`` (with gradient) against ``target``."""

    def describe(self) -> str:
        """How ``ktg render`` names the loss ('': by its reference in the spec)."""
        return str(getattr(self, "name", ""))

    def check_shapes(self, receiver: Shape, sender: Shape) -> str | None:
        """Why the two ends' tap shapes cannot be compared, and what to change; None if they
        can (feature edges; run by ``validate --deep`` and before training)."""
        return None

    def make_adapter(self, receiver: Shape, sender: Shape) -> nn.Module | None:
        """A module owned by the edge and trained with the receiver, applied to the
        receiver's output before the loss; None for most losses."""
        return None


@runtime_checkable
class Optimizer(Protocol):
    """What the engine and the checkpoints read of an optimizer (``torch.optim.Optimizer``)."""

    param_groups: list[dict[str, Any]]

    def zero_grad(self, set_to_none: bool = True) -> None: ...
    def step(self, closure: Any = None) -> Any: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


@runtime_checkable
class Scheduler(Protocol):
    """What the engine and the checkpoints read of a learning-rate scheduler (torch's
    ``LRScheduler``); it steps every epoch or every batch, as its registration says."""

    def step(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class ContractError(TypeError):
    """A builder returned something that does not meet its kind's contract."""


def require(kind: str, name: str, built: Any, contract: type) -> Any:
    """``built`` if it meets ``contract``, else a :class:`ContractError` that says how to."""
    if isinstance(built, contract):
        return built
    missing = ", ".join(_missing(built, contract)) or "its base class"
    raise ContractError(
        f"{kind} '{name}' returned {type(built).__name__}, which is not a "
        f"ktg_dsl.contracts.{contract.__name__} (missing: {missing}); subclass "
        f"ktg_dsl.contracts.{contract.__name__} and implement what it marks abstract"
    )


def _missing(obj: Any, contract: type) -> Iterator[str]:
    for name in sorted(getattr(contract, "__abstractmethods__", ())):
        if not callable(getattr(obj, name, None)):
            yield name
