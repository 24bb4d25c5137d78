"""torchvision's ResNets, with their ImageNet stem or adapted to 32x32 inputs.

The ImageNet stem (7x7 stride-2 conv, then a stride-2 max-pool) would shrink a 32x32 image to
8x8 before the first block and to 1x1 at the last stage; a 3x3 stride-1 stem without the pool
keeps 32x32 at the first stage and 4x4 at the last, the usual CIFAR variant (``stem="cifar"``,
the default). ``stem="imagenet"`` keeps torchvision's model as it is, so that a torchvision
weights file loads into it (a teacher's ``checkpoint:``).
"""

from __future__ import annotations

import torchvision
from torch import nn

_BUILDERS = {
    18: torchvision.models.resnet18,
    34: torchvision.models.resnet34,
    50: torchvision.models.resnet50,
}


def cifar_tv_resnet(
    depth: int, num_classes: int, in_channels: int, stem: str = "cifar"
) -> nn.Module:
    if depth not in _BUILDERS:
        raise ValueError(
            f"torchvision ResNet depth must be one of {sorted(_BUILDERS)}, got {depth}"
        )
    model = _BUILDERS[depth](weights=None, num_classes=num_classes)
    if stem == "imagenet":
        if in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        return model
    model.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    # same init torchvision gives its own stem
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model
