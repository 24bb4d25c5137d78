"""A plugin as a user would write one: it registers a gate when imported with --plugin."""

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from ktg_dsl.components.gates import Gate
from ktg_dsl.registry import GATES


@dataclass(frozen=True)
class WarmStart(Gate):
    until: float = 0.5

    def shape(self, p: float) -> float:
        return 1.0 if p >= self.until else 0.0


@GATES.register()
def warm_start(until: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5) -> Gate:
    """Closed for the first ``until`` of training, then fully open."""
    return WarmStart("warm_start", "parametric", until=until)
