"""A plugin as a user would write one: it registers a gate when imported with --plugin."""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from ktg_dsl.components.gates import Gate
from ktg_dsl.registry import GATES, PRUNERS


@dataclass(frozen=True)
class WarmStart(Gate):
    until: float = 0.5

    def shape(self, p: float) -> float:
        return 1.0 if p >= self.until else 0.0


@GATES.register()
def warm_start(until: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5) -> Gate:
    """Closed for the first ``until`` of training, then fully open."""
    return WarmStart("warm_start", "parametric", until=until)


@PRUNERS.register()
def after_first_trial(epochs: int, at_epoch: int = 1) -> Any:
    """Prunes every trial but the first at epoch ``at_epoch`` (a deterministic pruner)."""
    import optuna

    class _Pruner(optuna.pruners.BasePruner):
        def prune(self, study: Any, trial: Any) -> bool:
            steps = trial.intermediate_values
            return trial.number > 0 and bool(steps) and max(steps) >= at_epoch

    return _Pruner()
