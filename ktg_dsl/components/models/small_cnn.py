"""A small CNN for tiny inputs (the 8x8 digits of the quickstart), also usable on 32x32.

Three conv3x3-BN-ReLU blocks of width w, 2w, 2w; a 2x2 max-pool after the second block when
the feature map is at least 4x4 (8x8 -> 4x4 on digits, 32x32 -> 16x16 on CIFAR), global
average pooling and a linear head. About 57k parameters at w = 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, width: int = 32) -> None:
        super().__init__()
        self.block1 = _conv_bn(in_channels, width)
        self.block2 = _conv_bn(width, 2 * width)
        self.block3 = _conv_bn(2 * width, 2 * width)
        self.fc = nn.Linear(2 * width, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(x))
        # pooling a map smaller than 4x4 would leave too little for the last conv to see
        if min(x.shape[-2:]) >= 4:
            x = F.max_pool2d(x, 2)
        x = self.block3(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)
