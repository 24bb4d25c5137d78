"""The registries: arguments checked against signatures; wrappers agree with torch."""

from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from ktg_dsl.contracts import ContractError
from ktg_dsl.registry import (
    DATASETS,
    GATES,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    PRUNERS,
    SAMPLERS,
    SCHEDULERS,
    LossMeta,
    Meta,
    PluginError,
    Registry,
    UnknownComponentError,
    load_builtins,
    load_plugins,
)

load_builtins()


def test_every_registry_has_builtins() -> None:
    assert {"through", "cutoff", "positive_linear", "negative_linear", "correct", "linear"} <= set(
        GATES.names()
    )
    assert {"ce", "kl"} <= set(LOSSES.names())
    assert {
        "resnet20",
        "resnet32",
        "resnet110",
        "resnet1202",
        "wrn_28_2",
        "resnet18",
        "small_cnn",
    } <= set(MODELS.names())
    assert {"digits", "cifar10", "cifar100", "imagefolder", "synthetic"} <= set(DATASETS.names())
    assert {"sgd", "adam", "adamw"} <= set(OPTIMIZERS.names())
    assert {"cosine", "step", "multistep", "constant"} <= set(SCHEDULERS.names())
    assert {"tpe", "random"} <= set(SAMPLERS.names())
    assert {"hyperband", "successive_halving", "median", "none"} <= set(PRUNERS.names())


def test_an_unknown_component_suggests_the_close_one() -> None:
    with pytest.raises(UnknownComponentError) as exc:
        GATES.get("positve_linear")
    assert "did you mean 'positive_linear'" in str(exc.value)


def test_arguments_checked_against_the_signature() -> None:
    kl = LOSSES.get("kl")
    assert kl.check({"temperature": 4}).model_dump() == {"temperature": 4.0}
    with pytest.raises(ValidationError):
        kl.check({"temperature": 0})
    with pytest.raises(ValidationError):
        kl.check({"temprature": 2})
    with pytest.raises(ValidationError):
        OPTIMIZERS.get("sgd").check({"lr": "fast"})


def test_injected_parameters_cannot_be_set_from_a_spec() -> None:
    with pytest.raises(ValidationError):
        MODELS.get("resnet32").check({"num_classes": 10})
    with pytest.raises(ValidationError):
        OPTIMIZERS.get("sgd").check({"params": []})


@pytest.mark.parametrize(
    "name", [n for n in OPTIMIZERS.names() if OPTIMIZERS.get(n).meta.torch_name]
)
def test_optimizer_wrappers_match_torch(name: str) -> None:
    import torch

    comp = OPTIMIZERS.get(name)
    torch_sig = inspect.signature(getattr(torch.optim, comp.meta.torch_name))
    for arg, field in comp.params.model_fields.items():
        assert arg in torch_sig.parameters, f"{name}.{arg} is not an argument of torch"
        default = torch_sig.parameters[arg].default
        assert field.default == default or tuple(field.default) == tuple(default), arg


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizers_build(name: str) -> None:
    import torch

    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = OPTIMIZERS.get(name).build({}, params=params, foreach=None, fused=None)
    assert isinstance(opt, torch.optim.Optimizer)


@pytest.mark.parametrize("name", SCHEDULERS.names())
def test_schedulers_build_and_step(name: str) -> None:
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=0.1)
    sched = SCHEDULERS.get(name).build({}, optimizer=opt, epochs=20, steps_per_epoch=5)
    assert SCHEDULERS.get(name).meta.interval in ("epoch", "step")
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] > 0
    assert isinstance(sched.state_dict(), dict)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_samplers_build(name: str) -> None:
    assert SAMPLERS.get(name).build({}, seed=0) is not None


@pytest.mark.parametrize("name", PRUNERS.names())
def test_pruners_build(name: str) -> None:
    assert PRUNERS.get(name).build({}, epochs=10) is not None


def test_registering_twice_is_refused() -> None:
    reg = Registry("thing", Meta)

    @reg.register("x")
    def x() -> int:
        return 1

    with pytest.raises(ValueError):

        @reg.register("x")
        def y() -> int:
            return 2


def test_a_misspelt_registration_key_is_refused() -> None:
    """The metadata is a typed dataclass per kind: a key it does not have was silently
    ignored when it was a dict (a loss registered with 'tagret' had no target)."""
    with pytest.raises(TypeError, match="'tagret', which a loss registration does not take"):
        LOSSES.register("spelt", tagret="logits")
    assert "spelt" not in LOSSES
    assert LOSSES.get("kl").meta == LossMeta(target="logits", check=LOSSES.get("kl").meta.check)


def test_a_builder_that_breaks_its_contract_is_named() -> None:
    with (
        GATES.registered("not_a_gate", lambda: object()),
        pytest.raises(ContractError, match=r"gate 'not_a_gate' returned object.*weight"),
    ):
        GATES.get("not_a_gate").build({})


def test_plugin_module_registers_a_gate() -> None:
    load_plugins(["ktg_test_plugin"], entry_points=False)
    g = GATES.get("warm_start").build({"until": 0.5})
    assert [g.weight(e, 5) for e in range(5)] == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_missing_plugin_is_a_clear_error() -> None:
    with pytest.raises(PluginError, match="not found"):
        load_plugins(["no_such_plugin_module_xyz"], entry_points=False)


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch) -> None:
    # an installed package declaring a plugin, as pip would leave it on sys.path
    dist = tmp_path / "ktg_fake_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ktg-fake-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ktg_dsl.plugins]\nfake = ktg_test_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_plugins([], entry_points=True)
    assert "ktg_test_plugin" in loaded
    assert "warm_start" in GATES
