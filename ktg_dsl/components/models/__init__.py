"""The model zoo, registered by name. Builders import torch only when called.

Every builder takes ``num_classes`` and ``in_channels`` (supplied by ktg from the dataset) and
returns an ``nn.Module`` mapping ``[B, in_channels, H, W]`` to logits ``[B, num_classes]``.
``param_count=`` (``ModelMeta``) counts parameters without building (used by ``ktg render``).
Builders that share a name with a submodule are registered under an explicit name
(``small_cnn_model`` as ``small_cnn``): importing the submodule would otherwise replace the
package attribute.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ...registry import MODELS
from .counts import cifar_resnet_params, small_cnn_params, tv_resnet_params, wrn_params


def _cifar_resnet(depth: int, num_classes: int, in_channels: int) -> Any:
    from .cifar_resnet import CifarResNet

    return CifarResNet(depth, num_classes=num_classes, in_channels=in_channels)


def _register_cifar_resnet(depth: int) -> None:
    def build(num_classes: int, in_channels: int) -> Any:
        return _cifar_resnet(depth, num_classes, in_channels)

    build.__doc__ = (
        f"CIFAR ResNet-{depth} (He et al. 2016: 3 stages of 16/32/64 channels, "
        "option-A identity shortcuts)."
    )
    MODELS.register(
        f"resnet{depth}",
        param_count=lambda num_classes, in_channels: cifar_resnet_params(
            depth, num_classes, in_channels
        ),
    )(build)


for _depth in (20, 32, 44, 56, 110, 1202):
    _register_cifar_resnet(_depth)


def _check_cifar_depth(depth: int) -> int:
    if (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet's depth is 6n+2 (20, 32, 44, 56, 110, ...), got {depth}")
    return depth


@MODELS.register(
    "cifar_resnet",
    param_count=lambda num_classes, in_channels, depth=32: cifar_resnet_params(
        depth, num_classes, in_channels
    ),
    check=lambda a: _check_cifar_depth(a["depth"]),
)
def cifar_resnet_model(
    num_classes: int, in_channels: int, depth: Annotated[int, Field(ge=8, le=2000)] = 32
) -> Any:
    """CIFAR ResNet of any depth 6n+2."""
    return _cifar_resnet(_check_cifar_depth(depth), num_classes, in_channels)


def _check_wrn_depth(depth: int) -> int:
    if (depth - 4) % 6:
        raise ValueError(f"a Wide-ResNet's depth is 6n+4 (16, 22, 28, 40, ...), got {depth}")
    return depth


def _wrn(num_classes: int, in_channels: int, depth: int, width: int, dropout: float) -> Any:
    from .wide_resnet import WideResNet

    return WideResNet(
        _check_wrn_depth(depth),
        width,
        num_classes=num_classes,
        in_channels=in_channels,
        dropout=dropout,
    )


@MODELS.register(
    "wrn",
    param_count=lambda num_classes, in_channels, depth=28, width=2, dropout=0.0: wrn_params(
        depth, width, num_classes, in_channels
    ),
    check=lambda a: _check_wrn_depth(a["depth"]),
)
def wrn(
    num_classes: int,
    in_channels: int,
    depth: Annotated[int, Field(ge=10, le=1000)] = 28,
    width: Annotated[int, Field(ge=1, le=32)] = 2,
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0,
) -> Any:
    """Wide-ResNet-depth-width (Zagoruyko & Komodakis 2016), pre-activation blocks."""
    return _wrn(num_classes, in_channels, depth, width, dropout)


def _register_wrn(depth: int, width: int) -> None:
    def build(
        num_classes: int, in_channels: int, dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    ) -> Any:
        return _wrn(num_classes, in_channels, depth, width, dropout)

    build.__doc__ = f"Wide-ResNet-{depth}-{width}."
    MODELS.register(
        f"wrn_{depth}_{width}",
        param_count=lambda num_classes, in_channels, dropout=0.0: wrn_params(
            depth, width, num_classes, in_channels
        ),
    )(build)


for _d, _w in (
    (16, 1),
    (16, 2),
    (16, 4),
    (16, 8),
    (22, 4),
    (28, 2),
    (28, 10),
    (40, 1),
    (40, 2),
    (40, 4),
):
    _register_wrn(_d, _w)


def _register_tv_resnet(depth: int) -> None:
    def build(
        num_classes: int, in_channels: int, stem: Literal["cifar", "imagenet"] = "cifar"
    ) -> Any:
        from .tv_resnet import cifar_tv_resnet

        return cifar_tv_resnet(depth, num_classes=num_classes, in_channels=in_channels, stem=stem)

    build.__doc__ = (
        f"torchvision ResNet-{depth}: stem cifar (3x3, stride 1, no max-pool: for 32x32 inputs) "
        "or imagenet (torchvision's own, which its weights files fit)."
    )
    MODELS.register(
        f"resnet{depth}",
        param_count=lambda num_classes, in_channels, stem="cifar": tv_resnet_params(
            depth, num_classes, in_channels, stem
        ),
    )(build)


for _depth in (18, 34, 50):
    _register_tv_resnet(_depth)


@MODELS.register(
    "small_cnn",
    param_count=lambda num_classes, in_channels, width=32: small_cnn_params(
        width, num_classes, in_channels
    ),
)
def small_cnn_model(
    num_classes: int, in_channels: int, width: Annotated[int, Field(ge=4, le=1024)] = 32
) -> Any:
    """A small 3-layer CNN for tiny inputs such as the 8x8 digits (conv-BN-ReLU x3, global
    average pooling, linear head)."""
    from .small_cnn import SmallCNN

    return SmallCNN(num_classes=num_classes, in_channels=in_channels, width=width)
