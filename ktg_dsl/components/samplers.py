"""Optuna samplers and pruners for ``ktg search``, by name. Optuna is imported only when a
search runs: each argument is checked at validation time against the values Optuna takes
(enumerations as ``Literal``, bounds as ``Field``, combinations in a ``check=`` hook), and
``tests/test_robustness_search.py`` keeps them equal to the installed Optuna's."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import Field

from ..registry import PRUNERS, SAMPLERS

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]


def _needs(package: str, sampler: str) -> Callable[[dict[str, Any]], None]:
    """A ``check=`` hook: the sampler imports ``package`` when it first samples; without it,
    the spec is refused now rather than the search failing later."""

    def check(args: dict[str, Any]) -> None:
        if importlib.util.find_spec(package) is None:  # looks, does not import
            raise ValueError(
                f"the {sampler} sampler needs the Python package '{package}', which is not "
                f"installed (pip install {package}, or choose another sampler)"
            )

    return check


def _check_tpe(args: dict[str, Any]) -> None:
    if args["group"] and not args["multivariate"]:
        raise ValueError("group: true needs multivariate: true")


@SAMPLERS.register(check=_check_tpe)
def tpe(
    seed: int | None,
    multivariate: bool = True,
    group: bool = False,
    n_startup_trials: NonNegInt = 10,
    constant_liar: bool = True,
) -> Any:
    """Tree-structured Parzen estimator (the original repository's choice, multivariate).
    ``constant_liar`` keeps parallel workers from proposing the same graph."""
    import optuna

    return optuna.samplers.TPESampler(
        seed=seed,
        multivariate=multivariate,
        group=group,
        n_startup_trials=n_startup_trials,
        constant_liar=constant_liar,
    )


@SAMPLERS.register()
def random(seed: int | None) -> Any:
    """Uniform random sampling (the KTG paper's choice, with successive halving)."""
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@contextlib.contextmanager
def _experimental_ok() -> Iterator[None]:
    """Optuna warns that some samplers are experimental on every use; the docs say it once."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


@SAMPLERS.register()
def bruteforce(seed: int | None) -> Any:
    """Every combination once (small graphs with few choices only)."""
    import optuna

    with _experimental_ok():
        return optuna.samplers.BruteForceSampler(seed=seed)


@SAMPLERS.register(check=_needs("scipy", "qmc"))
def qmc(seed: int | None, qmc_type: Literal["sobol", "halton"] = "sobol") -> Any:
    """Quasi-Monte-Carlo for numeric ranges; categorical choices are sampled at random."""
    import optuna

    with _experimental_ok():
        return optuna.samplers.QMCSampler(
            seed=seed, qmc_type=qmc_type, warn_independent_sampling=False
        )


@SAMPLERS.register(check=_needs("cmaes", "cmaes"))
def cmaes(seed: int | None, n_startup_trials: NonNegInt = 1) -> Any:
    """CMA-ES for numeric ranges; categorical choices fall back to random sampling."""
    import optuna

    return optuna.samplers.CmaEsSampler(
        seed=seed, n_startup_trials=n_startup_trials, warn_independent_sampling=False
    )


@SAMPLERS.register()
def nsgaii(seed: int | None, population_size: Annotated[int, Field(ge=2)] = 50) -> Any:
    """NSGA-II genetic search."""
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=population_size)


@PRUNERS.register()
def none(epochs: int) -> Any:
    """Never prune: every trial runs all epochs."""
    import optuna

    return optuna.pruners.NopPruner()


@PRUNERS.register()
def hyperband(
    epochs: int, min_resource: PosInt = 1, reduction_factor: Annotated[int, Field(ge=2)] = 3
) -> Any:
    """Hyperband over epochs (the original repository's pruner)."""
    import optuna

    return optuna.pruners.HyperbandPruner(
        min_resource=min_resource, max_resource=epochs, reduction_factor=reduction_factor
    )


@PRUNERS.register()
def successive_halving(
    epochs: int,
    min_resource: PosInt = 1,
    reduction_factor: Annotated[int, Field(ge=2)] = 4,
    min_early_stopping_rate: NonNegInt = 0,
) -> Any:
    """Asynchronous successive halving (ASHA), as in the KTG paper."""
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_resource,
        reduction_factor=reduction_factor,
        min_early_stopping_rate=min_early_stopping_rate,
    )


@PRUNERS.register()
def median(epochs: int, n_startup_trials: NonNegInt = 5, n_warmup_steps: NonNegInt = 0) -> Any:
    """Stop a trial whose best score is below the median of earlier trials at the same epoch."""
    import optuna

    return optuna.pruners.MedianPruner(
        n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
    )


@PRUNERS.register()
def percentile(
    epochs: int,
    percentile: Annotated[float, Field(gt=0.0, lt=100.0)] = 25.0,
    n_startup_trials: NonNegInt = 5,
    n_warmup_steps: NonNegInt = 0,
) -> Any:
    """Like ``median`` at another percentile."""
    import optuna

    return optuna.pruners.PercentilePruner(
        percentile, n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
    )
