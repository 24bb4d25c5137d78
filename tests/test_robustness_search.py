"""Sampler and pruner options are checked when a spec is validated, against the values the
installed Optuna takes, without importing Optuna; every registered one builds and runs."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import optuna
import pytest

from ktg_dsl.check import check_data
from ktg_dsl.registry import PRUNERS, SAMPLERS, load_builtins

from .test_search import search_spec

load_builtins()


def issues_of(search: dict[str, Any]) -> list[str]:
    report = check_data(search_spec(**search))
    return [i.format() for i in report.issues]


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_builds_with_its_defaults_and_samples(name: str) -> None:
    needs = {"cmaes": "cmaes", "qmc": "scipy"}.get(name)
    if needs and importlib.util.find_spec(needs) is None:  # refused at validation instead
        assert any(f"needs the Python package '{needs}'" in i for i in issues_of({"sampler": name}))
        return
    sampler = SAMPLERS.get(name).build({}, seed=0)
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: t.suggest_int("x", 0, 3) + len(t.suggest_categorical("g", ["a", "bb"])),
        n_trials=3,
    )
    assert len(study.trials) == 3


@pytest.mark.parametrize("name", PRUNERS.names())
def test_every_pruner_builds_with_its_defaults(name: str) -> None:
    assert isinstance(PRUNERS.get(name).build({}, epochs=3), optuna.pruners.BasePruner)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_enumerated_options_are_the_ones_optuna_takes() -> None:
    choices = typing.get_args(SAMPLERS.get("qmc").params.model_fields["qmc_type"].annotation)
    assert choices == ("sobol", "halton")
    for choice in choices:
        SAMPLERS.get("qmc").build({"qmc_type": choice}, seed=0)
    with pytest.raises(ValueError):  # what `ktg search` met at run time before
        optuna.samplers.QMCSampler(qmc_type="lhs")


# ktg's own defaults where they differ from Optuna's on purpose
OWN_DEFAULTS = {("tpe", "multivariate"), ("successive_halving", "min_resource")}


def test_every_argument_is_an_argument_of_optuna() -> None:
    """Each sampler or pruner argument a spec may set exists in the Optuna class it builds,
    with Optuna's default unless ktg chose its own."""
    classes = {
        "tpe": optuna.samplers.TPESampler,
        "qmc": optuna.samplers.QMCSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "nsgaii": optuna.samplers.NSGAIISampler,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
    }
    for name, cls in classes.items():
        registry = SAMPLERS if name in SAMPLERS else PRUNERS
        theirs = inspect.signature(cls).parameters
        for arg, field in registry.get(name).params.model_fields.items():
            assert arg in theirs, (name, arg)
            if theirs[arg].default is not inspect.Parameter.empty:
                same = field.default == theirs[arg].default
                assert same != ((name, arg) in OWN_DEFAULTS), (name, arg, field.default)


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (
            {"sampler": {"type": "qmc", "qmc_type": "lhs"}},
            "search.sampler.qmc_type: expected 'sobol' or 'halton', got 'lhs'",
        ),
        (
            {"sampler": {"type": "tpe", "multivariate": False, "group": True}},
            "search.sampler: group: true needs multivariate: true",
        ),
        (
            {"sampler": {"type": "nsgaii", "population_size": 1}},
            "search.sampler.population_size: must be >= 2, got 1",
        ),
        (
            {"pruner": {"type": "median", "n_startup_trials": True}},
            "search.pruner.n_startup_trials: expected an integer, got true",
        ),
        (
            {"pruner": {"type": "percentile", "percentile": 100}},
            "search.pruner.percentile: must be < 100.0, got 100",
        ),
    ],
    ids=["qmc_type", "tpe-group", "population", "bool-as-int", "percentile"],
)
def test_options_optuna_refuses_are_validation_errors(search: dict[str, Any], message: str) -> None:
    found = issues_of(search)
    assert any(message in line for line in found), found


def test_validate_checks_them_without_importing_optuna(tmp_path: Path) -> None:
    spec = search_spec(sampler={"type": "qmc", "qmc_type": "lhs"}, pruner="hyperband")
    code = (
        "import sys\n"
        "from ktg_dsl.check import check_data\n"
        f"report = check_data({spec!r})\n"
        "assert [i.message for i in report.errors], report.issues\n"
        "assert 'optuna' not in sys.modules, 'validate imported optuna'\n"
    )
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
