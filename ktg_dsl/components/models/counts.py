"""Exact parameter counts of the zoo's models, computed without importing torch.

``ktg render`` shows model sizes without building anything. Each function mirrors its model
file layer by layer and equals ``sum(p.numel() for p in model.parameters())``: BatchNorm
counts its weight and bias, never its running statistics. tests/test_models.py holds every
registered model to that.
"""

from __future__ import annotations


def _conv(in_channels: int, out_channels: int, kernel: int) -> int:
    return in_channels * out_channels * kernel * kernel  # bias-free: a BatchNorm follows


def _bn(channels: int) -> int:
    return 2 * channels


def _linear(in_features: int, out_features: int) -> int:
    return in_features * out_features + out_features


def cifar_resnet_params(depth: int, num_classes: int, in_channels: int) -> int:
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet's depth is 6n+2 with n >= 1, got {depth}")
    n = (depth - 2) // 6
    total = _conv(in_channels, 16, 3) + _bn(16)
    channels = 16
    for width in (16, 32, 64):
        for _ in range(n):
            # option-A shortcuts have no parameters
            total += _conv(channels, width, 3) + _bn(width) + _conv(width, width, 3) + _bn(width)
            channels = width
    return total + _linear(channels, num_classes)


def wrn_params(depth: int, width: int, num_classes: int, in_channels: int) -> int:
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"a Wide-ResNet's depth is 6n+4 with n >= 1, got {depth}")
    n = (depth - 4) // 6
    total = _conv(in_channels, 16, 3)
    channels = 16
    for i, base in enumerate((16, 32, 64)):
        out = base * width
        for j in range(n):
            stride = 2 if i > 0 and j == 0 else 1
            total += _bn(channels) + _conv(channels, out, 3) + _bn(out) + _conv(out, out, 3)
            if stride != 1 or channels != out:
                total += _conv(channels, out, 1)
            channels = out
    return total + _bn(channels) + _linear(channels, num_classes)


# torchvision's layouts: blocks per stage, and whether the block is a bottleneck (expansion 4)
_TV_RESNETS: dict[int, tuple[tuple[int, int, int, int], bool]] = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
}


def tv_resnet_params(depth: int, num_classes: int, in_channels: int, stem: str = "cifar") -> int:
    if depth not in _TV_RESNETS:
        raise ValueError(
            f"torchvision ResNet depth must be one of {sorted(_TV_RESNETS)}, got {depth}"
        )
    layout, bottleneck = _TV_RESNETS[depth]
    expansion = 4 if bottleneck else 1
    # torchvision's 7x7 stem, or the 3x3 one that replaces it for 32x32 inputs
    total = _conv(in_channels, 64, 7 if stem == "imagenet" else 3) + _bn(64)
    channels = 64
    for stage, blocks in enumerate(layout):
        planes = 64 * 2**stage
        out = planes * expansion
        for j in range(blocks):
            stride = 2 if stage > 0 and j == 0 else 1
            if bottleneck:
                total += _conv(channels, planes, 1) + _bn(planes)
                total += _conv(planes, planes, 3) + _bn(planes)
                total += _conv(planes, out, 1) + _bn(out)
            else:
                total += _conv(channels, planes, 3) + _bn(planes)
                total += _conv(planes, planes, 3) + _bn(planes)
            if stride != 1 or channels != out:
                total += _conv(channels, out, 1) + _bn(out)  # torchvision's downsample branch
            channels = out
    return total + _linear(channels, num_classes)


def small_cnn_params(width: int, num_classes: int, in_channels: int) -> int:
    total = _conv(in_channels, width, 3) + _bn(width)
    total += _conv(width, 2 * width, 3) + _bn(2 * width)
    total += _conv(2 * width, 2 * width, 3) + _bn(2 * width)
    return total + _linear(2 * width, num_classes)
