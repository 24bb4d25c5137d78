"""One trial: sample a graph, check it, train it with the recipe, report every epoch's objective
to the pruner. A trial that cannot give a value fails with its reason; the study goes on."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml

from ..errors import KtgRuntimeError, SpecError
from ..graph import GraphReport
from ..spec.schema import Spec
from .space import SearchSpace, check_sampled, error_lines

HOST = platform.node()


class Objective:
    def __init__(self, space: SearchSpace, study_name: str, runs: Path, quiet: bool = True) -> None:
        self.space = space
        self.study_name = study_name
        self.runs = runs
        self.quiet = quiet
        assert space.spec.search is not None
        self.goal = space.spec.search.objective
        self.node = self.goal.node or space.names[0]
        self.stop_requested = False  # Ctrl-C seen by a trial that still completed

    def __call__(self, trial: Any) -> float:
        trial.set_user_attr("host", HOST)
        trial.set_user_attr("pid", os.getpid())
        data = self.space.concrete(self._sample(trial), self._note(trial))
        trial.set_user_attr("spec", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        checked = check_sampled(data)
        if not checked.ok or checked.spec is None:
            return self._fail(
                trial,
                "the sampled graph is not a valid spec: " + "; ".join(error_lines(checked)[:3]),
            )
        run_dir = self.runs / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        values = self._train(trial, checked.spec, checked.graph, run_dir)
        if not values:
            return self._fail(trial, f"node '{self.node}' reported no {self.goal.metric}")
        if self.goal.reduce == "last":
            return values[-1]
        return max(values) if direction(self.goal) == "maximize" else min(values)

    def _note(self, trial: Any) -> str:
        return f"trial {trial.number} of study '{self.study_name}' (ktg search)"

    def _sample(self, trial: Any) -> dict[str, Any]:
        try:
            return self.space.suggest(trial)
        except ValueError as exc:  # the sampler cannot handle this space at all
            if "dynamic value space" in str(exc):
                raise KtgRuntimeError(
                    f"study '{self.study_name}' was started with other choices for one of its "
                    "parameters; a changed search space needs a new study: --study NEW_NAME"
                ) from None
            raise KtgRuntimeError(f"the sampler cannot sample this search space: {exc}") from None

    def _train(
        self, trial: Any, spec: Spec, graph: GraphReport | None, run_dir: Path
    ) -> list[float]:
        """Train the trial's graph, reporting the objective every epoch; the values seen."""
        import optuna

        from ..run.recipe import Recipe

        values: list[float] = []

        def report(epoch: int, rows: dict[str, dict[str, Any]]) -> None:
            value = rows[self.node].get(self.goal.metric)
            if value is None:
                return  # no evaluation this epoch
            values.append(float(value))
            live(trial.number, epoch, spec.train.epochs, self.goal.metric, float(value))
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch + 1}")

        recipe = Recipe(spec, run_dir, graph=graph, progress=not self.quiet, hooks=[report])
        try:
            recipe.setup()
            result = recipe.train()
        except optuna.TrialPruned:
            raise
        except (KtgRuntimeError, SpecError) as exc:
            self._fail(trial, str(exc))
        except Exception as exc:  # out of memory, a plugin's bug: this trial fails, not the study
            text = str(exc).strip()
            self._fail(
                trial, f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"
            )
        finally:
            recipe.cleanup()
            self.stop_requested = self.stop_requested or recipe.stop.requested
            _release_memory()
        if result.interrupted:
            trial.set_user_attr("fail_reason", "interrupted")
            raise KeyboardInterrupt
        return values

    @staticmethod
    def _fail(trial: Any, reason: str) -> NoReturn:
        trial.set_user_attr("fail_reason", reason)
        raise TrialFailed(reason)


def live(number: int, epoch: int, epochs: int, metric: str, value: float) -> None:
    """On a terminal, the running trial's line, rewritten each epoch (the line that ends the
    trial replaces it); elsewhere nothing: a log gets one line per trial."""
    if sys.stderr.isatty():
        text = f"trial {number}: epoch {epoch + 1}/{epochs}, {metric} {value:.4f} so far"
        print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)


def direction(goal: Any) -> Literal["maximize", "minimize"]:
    """maximize or minimize: as written, else maximize accuracies and minimize losses."""
    if goal.direction is not None:
        chosen: Literal["maximize", "minimize"] = goal.direction
        return chosen
    return "minimize" if goal.metric.endswith("loss") else "maximize"


def _release_memory() -> None:
    import gc

    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # a trial that ran out of memory must not starve the next


class TrialFailed(Exception):
    """A trial that cannot produce a value (recorded as FAIL with its reason)."""
