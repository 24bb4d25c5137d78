"""A plugin as a user would write one: it registers a gate when imported with --plugin."""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from ktg_dsl.components.gates import Gate
from ktg_dsl.registry import GATES, MODELS, PRUNERS


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


@MODELS.register()
def marked_cnn(num_classes: int, in_channels: int, width: int = 4) -> Any:
    """small_cnn that, at its $KTG_TEST_MARK_AFTER-th training forward, writes its process id
    to the file named by $KTG_TEST_MARK and then waits there until the test has acted and
    writes ``<mark>.go`` (tests/conftest.py: ``release``): an event in the middle of an epoch
    that a test acts on (a signal, a kill) while the run is held at it, instead of racing a
    run that may finish first on a busy machine. A process started again after ``<mark>.go``
    exists (a restarted rank) neither marks nor waits."""
    import os
    import time
    from pathlib import Path

    from ktg_dsl.components.models.small_cnn import SmallCNN

    mark, after = os.environ.get("KTG_TEST_MARK"), int(os.environ.get("KTG_TEST_MARK_AFTER", 0))

    class Marked(SmallCNN):
        calls = 0

        def forward(self, x: Any) -> Any:
            if self.training and mark:
                self.calls += 1
                go = Path(f"{mark}.go")
                if self.calls == after and not go.exists():
                    Path(f"{mark}.tmp").write_text(str(os.getpid()))  # which process: a
                    os.replace(f"{mark}.tmp", mark)  # test may kill it; never read half-written
                    deadline = time.monotonic() + 300
                    while not go.exists() and time.monotonic() < deadline:
                        time.sleep(0.01)  # signals are handled while waiting here
            return super().forward(x)

    return Marked(num_classes=num_classes, in_channels=in_channels, width=width)


@MODELS.register()
def staged_net(num_classes: int, in_channels: int, width: int = 8) -> Any:
    """A model from outside the zoo, as a user's plugin wraps one (a timm model, say): its
    layers live in a ModuleList of stages, so its taps are paths like ``stages.1``."""
    from torch import nn

    class Staged(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stages = nn.ModuleList(
                [
                    nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()),
                    nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU()),
                ]
            )
            self.head = nn.Linear(2 * width, num_classes)

        def forward(self, x: Any) -> Any:
            for stage in self.stages:
                x = stage(x)
            return self.head(x.mean((2, 3)))

    return Staged()
