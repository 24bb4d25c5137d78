"""Every registered model builds, maps images to logits, and has the size ``ktg render`` says."""

from __future__ import annotations

import pytest
import torch

from ktg_dsl.registry import MODELS, load_builtins

load_builtins()

NAMES = MODELS.names()
# the largest model takes seconds to build: in the slow suite
SIZED = [pytest.param(n, marks=pytest.mark.slow) if n == "resnet1202" else n for n in NAMES]
NUM_CLASSES = 7  # neither 10 nor 100, so a head hard-wired to a dataset would show
IN_CHANNELS = 1

# Models this large take seconds to initialise on CPU; on the meta device they allocate nothing
# and still run shape propagation through every layer.
META_ABOVE_PARAMS = 15_000_000


def _param_count(name: str, num_classes: int = NUM_CLASSES, in_channels: int = IN_CHANNELS) -> int:
    component = MODELS.get(name)
    if component.meta.param_count is None:
        if component.factory.__module__.startswith("ktg_dsl."):
            pytest.fail(f"built-in model '{name}' registers no param_count")
        pytest.skip(f"plugin model '{name}' declares no param_count")
    defaults = component.check({}).model_dump()
    count = component.meta.param_count(num_classes=num_classes, in_channels=in_channels, **defaults)
    assert isinstance(count, int), f"{name}: param_count returned {count!r}"
    return count


def _build(
    name: str, device: str, num_classes: int = NUM_CLASSES, in_channels: int = IN_CHANNELS
) -> torch.nn.Module:
    with torch.device(device):
        model = MODELS.get(name).build({}, num_classes=num_classes, in_channels=in_channels)
    assert isinstance(model, torch.nn.Module)
    return model


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _is_big(name: str) -> bool:
    component = MODELS.get(name)
    if component.meta.param_count is None:  # a plugin that did not say: try it for real
        return False
    return _param_count(name) > META_ABOVE_PARAMS


@pytest.mark.parametrize("name", SIZED)
def test_builds_and_maps_images_to_logits(name: str) -> None:
    big = _is_big(name)
    device = "meta" if big else "cpu"
    model = _build(name, device).eval()
    x = torch.randn(2, IN_CHANNELS, 32, 32, device=device)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, NUM_CLASSES)
    if not big:
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", SIZED)
def test_param_count_is_exact(name: str) -> None:
    expected = _param_count(name, num_classes=100, in_channels=3)
    model = _build(name, "meta", num_classes=100, in_channels=3)
    assert _n_params(model) == expected
    # the head and stem scale with the dataset; the count must follow them
    assert _n_params(_build(name, "meta")) == _param_count(name)


@pytest.mark.parametrize(
    ("name", "published"),
    [
        ("resnet20", 0.27e6),
        ("resnet32", 0.46e6),
        ("resnet44", 0.66e6),
        ("resnet56", 0.85e6),
        ("resnet110", 1.7e6),
        pytest.param("resnet1202", 19.4e6, marks=pytest.mark.slow),
    ],
)
def test_cifar_resnet_matches_published_size(name: str, published: float) -> None:
    # He et al. 2016 (Table 6) give these sizes for CIFAR-10, so compare with a 10-class head; a
    # 100-class head adds 90 * 65 = 5,850 parameters, still within 3% for resnet32 and up.
    count = _n_params(_build(name, "meta", num_classes=10, in_channels=3))
    assert abs(count - published) / published < 0.03, f"{name}: {count:,} parameters"


@pytest.mark.parametrize(("name", "published"), [("wrn_28_10", 36.5e6), ("wrn_16_4", 2.7e6)])
def test_wide_resnet_matches_published_size(name: str, published: float) -> None:
    # Zagoruyko & Komodakis 2016 (CIFAR-10) give sizes to 0.1M, seemingly truncated: WRN-16-4
    # has 2.75M parameters, which the paper writes as 2.7M
    count = _n_params(_build(name, "meta", num_classes=10, in_channels=3))
    assert abs(count - published) / published < 0.03, f"{name}: {count:,} parameters"


def test_small_cnn_on_digits() -> None:
    # the quickstart: 8x8 grayscale digits, 10 classes
    model = _build("small_cnn", "cpu", num_classes=10, in_channels=1)
    logits = model(torch.randn(16, 1, 8, 8))
    assert logits.shape == (16, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("size", [1, 2, 3, 8, 32])
def test_small_cnn_accepts_any_small_image(size: int) -> None:
    model = _build("small_cnn", "cpu", num_classes=3, in_channels=1).eval()
    assert model(torch.randn(2, 1, size, size)).shape == (2, 3)


@pytest.mark.parametrize(
    "name", ["resnet20", "wrn_16_2", pytest.param("resnet18", marks=pytest.mark.slow), "small_cnn"]
)
def test_channels_last_under_bf16_autocast(name: str) -> None:
    # how the engine runs models on hardware with bf16: a channels_last batch under autocast
    model = _build(name, "cpu", num_classes=10, in_channels=3)
    model = model.to(memory_format=torch.channels_last).train()
    x = torch.randn(4, 3, 32, 32).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.shape == (4, 10)
    logits.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_wrn_dropout_is_active_only_in_training() -> None:
    model = MODELS.get("wrn_16_1").build({"dropout": 0.5}, num_classes=10, in_channels=3)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    ("name", "args"), [("cifar_resnet", {"depth": 21}), ("wrn", {"depth": 27})]
)
def test_impossible_depths_are_refused(name: str, args: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="depth"):
        MODELS.get(name).build(args, num_classes=10, in_channels=3)
